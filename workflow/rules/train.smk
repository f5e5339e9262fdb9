rule train:
    """One (experiment, fold): fit every endpoint, choose on validation, predict all splits."""
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/models/{{experiment}}/fold{{fold}}/model.joblib",
        predictions=f"{RESULTS}/models/{{experiment}}/fold{{fold}}/predictions.tsv",
        survival=f"{RESULTS}/models/{{experiment}}/fold{{fold}}/survival.parquet",
        train_log=f"{RESULTS}/models/{{experiment}}/fold{{fold}}/train_log.json",
    log:
        f"{RESULTS}/logs/train/{{experiment}}/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/fold{{fold}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=experiment_gpus,
    params:
        spec=experiment_spec,
        variables=experiment_variables,
        endpoints=config_param(config["endpoints"]),
        seed=config["seed"],
    script:
        "../scripts/train.py"


rule predictions:
    """All folds' predictions and survival curves of an experiment in one table each."""
    input:
        fold_dirs,
    output:
        predictions=f"{RESULTS}/predictions/{{experiment}}.tsv",
        survival=f"{RESULTS}/predictions/{{experiment}}.survival.parquet",
    log:
        f"{RESULTS}/logs/predictions/{{experiment}}.log",
    conda:
        "../envs/survival.yaml"
    script:
        "../scripts/predictions.py"
