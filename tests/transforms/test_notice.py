"""The public notice: Chinese headers, sorted by district and name, nothing private, nothing
a spreadsheet would execute."""

import datetime as dt

import polars as pl

from jointdraw.transforms.documents.notice import NOTICE_COLUMNS, public_notice
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.storage.csvout import write_people_csv

PLAN = Plan.model_validate(
    {
        "plan_id": "P",
        "period": {"start": "2026-03-01", "end": "2026-11-30"},
        "tasks": [{"task_id": "T", "department": "AMR", "items": ["AMR-1"], "count": 1}],
    }
)
ITEMS = pl.DataFrame({"item_id": ["AMR-1", "ENV-1"], "name": ["食品经营许可检查", "排污许可检查"]})
JOINT = pl.DataFrame(
    {
        "joint_task_id": ["P-U1", "P-U2", "P-U3"],
        "uscc": ["U1", "U2", "U3"],
        "name": ['=HYPERLINK("http://x","点我")', "福田区王小明便利店", "甲公司"],
        "district_code": ["440304", "440304", "440303"],
        "address": ["a", "b", "c"],
        "departments": [["AMR"], ["AMR", "ENV"], ["ENV"]],
        "lead_department": ["AMR", "ENV", "ENV"],
        "task_ids": [["T"], ["T", "E"], ["E"]],
        "item_ids": [["AMR-1"], ["AMR-1", "ENV-1"], ["ENV-1"]],
        "inspector_ids": [["I1", "I2"], ["I3", "I4", "I5"], None],
        "planned_date": [dt.date(2026, 4, 1), dt.date(2026, 5, 6), None],
    }
)
DIRECTORY = pl.DataFrame(
    {
        "uscc": ["U1", "U2", "U3"],
        "entity_type": ["enterprise", "individual", "enterprise"],
        "operator_name": [None, "王小明", None],
        "phone": [None, "13800138000", None],
        "credit_risk": ["D", "C", "A"],
    }
)


def test_notice_rows_headers_order_and_masking(tmp_path):
    notice = public_notice(JOINT, DIRECTORY, ITEMS, PLAN)
    # 罗湖 (440303) before 福田 (440304); inside 福田 by name
    assert notice["uscc"].to_list() == ["U3", "U1", "U2"]
    u2 = notice.filter(pl.col("uscc") == "U2").row(0, named=True)
    assert u2["name"] == "福田区***便利店"  # an individual business's operator is not named
    assert u2["items"] == ["食品经营许可检查", "排污许可检查"] and u2["departments"] == ["市场监督管理局", "生态环境局"]
    assert u2["window"] == "2026-03-01至2026-11-30" and u2["district"] == "福田区"
    path = write_people_csv(notice, tmp_path / "notice.csv", NOTICE_COLUMNS)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(NOTICE_COLUMNS.values())
    back = pl.read_csv(path, infer_schema=False)
    assert back["企业名称"].to_list()[1] == '\'=HYPERLINK("http://x","点我")'  # neutralised: Excel shows text
    assert back.filter(pl.col("统一社会信用代码") == "U2")["抽查事项"].item() == "食品经营许可检查；排污许可检查"
    # never the class, the inspectors, the operator or the phone
    cells = set(back.unpivot()["value"].drop_nulls())
    for secret in ["D", "C", "A", "I1", "I3", "王小明", "13800138000", "2026-04-01"]:
        assert not any(secret == c or (len(secret) > 1 and secret in c) for c in cells), secret
