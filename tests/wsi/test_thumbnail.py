"""QC thumbnails."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mmsurv.wsi import open_slide, tile_slide, write_thumbnail

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_thumbnail_is_written_atomically(tmp_path: Path, disc_slide) -> None:
    result = tile_slide(disc_slide.path, max_tiles=40)
    with open_slide(disc_slide.path) as slide:
        out = write_thumbnail(tmp_path / "thumbs" / "disc.png", slide, result, max_size_px=512)
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["disc.png"]
    with Image.open(out) as img:
        assert img.width > 400 and img.height > 300


def test_thumbnail_without_tissue(tmp_path: Path, disc_slide) -> None:
    result = tile_slide(disc_slide.path, min_tissue_fraction=1.0, tile_size_px=4096)
    assert result.n_tiles == 0
    with open_slide(disc_slide.path) as slide:
        out = write_thumbnail(tmp_path / "empty.png", slide, result, max_size_px=256)
    assert out.read_bytes()[:8] == PNG_MAGIC
