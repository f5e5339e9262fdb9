"""Size presets of the synthetic demo cohort."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DemoPreset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of one demo cohort.

    Attributes
    ----------
    name
        Preset name (``"smoke"`` or ``"demo"``).
    n_patients
        Patients in ``samples.tsv``.
    extra_scna_fraction
        SCNA-only patients added to ``scna.tsv``, as a fraction of ``n_patients``.
    slide_size_px
        Nominal level-0 slide size ``(width, height)`` in pixels; each slide jitters it by up
        to +-10 %.
    slide_levels
        Pyramid levels per slide (level 0 included).
    slide_downsample
        Downsample factor between successive pyramid levels.
    tile_px
        TIFF tile edge in pixels.
    jpeg_quality
        JPEG quality (0..100) of the slide tiles.
    volume_shape
        MRI/DTI grid ``(nx, ny, nz)`` in voxels.
    volume_spacing_mm
        Nominal voxel spacing ``(sx, sy, sz)`` in millimetres; each patient jitters it by +-5 %.
    n_genes
        Genes in the RNA and SCNA matrices.
    n_module_genes
        Genes in the planted risk module of the RNA matrix.
    """

    name: str
    n_patients: int
    extra_scna_fraction: float
    slide_size_px: tuple[int, int]
    slide_levels: int
    slide_downsample: int
    tile_px: int
    jpeg_quality: int
    volume_shape: tuple[int, int, int]
    volume_spacing_mm: tuple[float, float, float]
    n_genes: int
    n_module_genes: int


PRESETS: dict[str, DemoPreset] = {
    "smoke": DemoPreset(
        name="smoke",
        n_patients=40,
        extra_scna_fraction=0.2,
        slide_size_px=(2000, 1500),
        slide_levels=2,
        slide_downsample=4,
        tile_px=256,
        jpeg_quality=80,
        volume_shape=(32, 32, 32),
        volume_spacing_mm=(6.0, 6.0, 5.5),
        n_genes=200,
        n_module_genes=20,
    ),
    "demo": DemoPreset(
        name="demo",
        n_patients=200,
        extra_scna_fraction=0.2,
        slide_size_px=(4000, 3000),
        slide_levels=3,
        slide_downsample=4,
        tile_px=256,
        jpeg_quality=80,
        volume_shape=(64, 64, 48),
        volume_spacing_mm=(3.0, 3.0, 3.6),
        n_genes=1000,
        n_module_genes=20,
    ),
}


def get_preset(preset: str | DemoPreset) -> DemoPreset:
    """Return the preset called ``preset`` (or ``preset`` itself if already a :class:`DemoPreset`).

    Raises
    ------
    ValueError
        If no preset has that name.
    """
    if isinstance(preset, DemoPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown demo preset {preset!r}; choose one of: {known}") from None
