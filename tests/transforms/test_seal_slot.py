"""A page that shows the seal (transforms/documents/seal.py): its slot filled in place, its hash taken with the
slot emptied, on the page's bytes."""

import hashlib

import pytest

from jointdraw.transforms.documents.seal import SLOT, fill_seal, hash_with_empty_slot, page_with_empty_slot

PAGE = '<html><p>深圳市抽查结果公示</p>\n<code id="seal">{}</code>\r\n<p>名称：某某有限公司</p></html>'
SEAL = hashlib.sha256(b"the manifest").hexdigest()


def test_the_seal_fills_the_slot_and_nothing_else(tmp_path):
    page = tmp_path / "notice.html"
    page.write_bytes(PAGE.format(SLOT).encode("utf-8"))
    as_written = page.read_bytes()
    assert hash_with_empty_slot(page) == hashlib.sha256(as_written).hexdigest()
    inode = page.stat().st_ino
    fill_seal(page, SEAL)
    assert page.read_bytes() == PAGE.format(SEAL).encode("utf-8") and page.stat().st_ino == inode
    # what the manifest listed still holds for the filled page, and the page shows the seal
    assert hash_with_empty_slot(page) == hashlib.sha256(as_written).hexdigest()
    assert page_with_empty_slot(page.read_bytes().decode("utf-8")) == (SEAL, PAGE.format(SLOT))
    with pytest.raises(ValueError, match="no empty seal slot"):
        fill_seal(page, SEAL)  # filled already


def test_only_a_seal_goes_into_a_slot(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(PAGE.format(SLOT), encoding="utf-8")
    for bad in ("", SEAL.upper(), SEAL[:-1], SEAL + "0"):
        with pytest.raises(ValueError, match="not a seal"):
            fill_seal(page, bad)
    (tmp_path / "plain.html").write_text("<html></html>", encoding="utf-8")
    with pytest.raises(ValueError, match="no empty seal slot"):
        fill_seal(tmp_path / "plain.html", SEAL)
