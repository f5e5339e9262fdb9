rule tile:
    """Tissue mask, tile grid at the target resolution, seeded sample of tiles; QC thumbnail."""
    input:
        unpack(slide_input),
        cohort=ancient(f"{RESULTS}/cohort/cohort.tsv"),
    output:
        tiles=f"{RESULTS}/wsi/tiles/{{slide}}.h5",
        thumbnail=report(
            f"{RESULTS}/wsi/thumbnails/{{slide}}.png",
            caption="../report/thumbnail.rst",
            category="WSI tiling",
            labels={"slide": "{slide}"},
        ),
    log:
        f"{RESULTS}/logs/wsi/tile/{{slide}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/wsi/tile/{{slide}}.tsv"
    conda:
        "../envs/wsi.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        slide=slide_params,
        tiling=config_param(TILING),
        seed=config["seed"],
    script:
        "../scripts/tile.py"


rule wsi_qc:
    """One row per slide: status (ok, no_tissue, skipped and why), tiles, resolution, level."""
    input:
        tiles=tile_files,
    output:
        report(
            f"{RESULTS}/wsi/qc.tsv",
            caption="../report/wsi_qc.rst",
            category="WSI tiling",
        ),
    log:
        f"{RESULTS}/logs/wsi/qc.log",
    conda:
        "../envs/wsi.yaml"
    script:
        "../scripts/wsi_qc.py"


rule extract:
    """Patch features of one slide's tiles with one encoder (batched; on the GPU if any)."""
    input:
        unpack(slide_input),
        tiles=f"{RESULTS}/wsi/tiles/{{slide}}.h5",
    output:
        f"{RESULTS}/wsi/features/{{encoder}}/{{slide}}.h5",
    log:
        f"{RESULTS}/logs/wsi/extract/{{encoder}}/{{slide}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/wsi/extract/{{encoder}}/{{slide}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=GPUS,
    params:
        slide=slide_params,
        extraction=encoder_params,
        seed=config["seed"],
    script:
        "../scripts/extract.py"
