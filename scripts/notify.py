"""Tell people when a run fails: a Prefect automation that posts to a webhook whenever a flow run
of any jointdraw deployment fails or crashes (a scheduled run at 02:00 that nobody watches).

    .venv/bin/python scripts/notify.py --url https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…

It saves the webhook as the Prefect block `jointdraw-alerts` (CustomWebhookNotificationBlock; the
body is the text-message format of the WeCom 企业微信 and DingTalk 钉钉 group robots:
{"msgtype": "text", "text": {"content": …}}; `--json` gives another body) and creates or
replaces the automation `jointdraw: a run failed`. Run it against the server the workers use
(PREFECT_API_URL, and PREFECT_API_AUTH_STRING when authentication is on). For mail, point the
URL at the city's mail gateway's webhook, or replace the block by Prefect's SMTP email block.
"""

from __future__ import annotations

import argparse
import asyncio
import json

BLOCK = "jointdraw-alerts"
AUTOMATION = "jointdraw: a run failed"
ROBOT_TEXT = {"msgtype": "text", "text": {"content": "{{subject}}\n{{body}}"}}  # WeCom / DingTalk group robots
SUBJECT = "jointdraw：运行失败 a run {{ flow_run.state.name }}"
BODY = (
    "{{ flow.name }} · {{ flow_run.name }} · {{ flow_run.state.name }}\n"
    "{{ flow_run.state.message }}\n"
    "重跑 retry: prefect flow-run retry {{ flow_run.id }}"
)


async def install(url: str, body: dict, allow_private: bool) -> str:
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    block = CustomWebhookNotificationBlock(name=BLOCK, url=url, json_data=body, allow_private_urls=allow_private)
    block_id = await block.save(BLOCK, overwrite=True)
    while True:  # replace, never duplicate: one message per failure
        try:
            await (await Automation.aread(name=AUTOMATION)).adelete()
        except ValueError:
            break
    automation = Automation(
        name=AUTOMATION,
        description="A flow run of a jointdraw flow failed or crashed: post it to the webhook (scripts/notify.py).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": ["plan-run", "results-run"]},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )
    created = await automation.acreate()
    return str(created.id)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the webhook to post to (a group robot, a mail gateway)")
    p.add_argument(
        "--json",
        help="the body as JSON, with {{subject}} and {{body}} where the message goes "
        "(default: the WeCom/DingTalk robot text message)",
    )
    p.add_argument("--allow-private", action="store_true", help="allow a webhook on a private or loopback address")
    args = p.parse_args()
    automation = asyncio.run(install(args.url, json.loads(args.json) if args.json else ROBOT_TEXT, args.allow_private))
    print(
        f"automation {AUTOMATION!r} ({automation}) posts failed and crashed jointdraw runs to {args.url} "
        f"(block {BLOCK})"
    )


if __name__ == "__main__":
    main()
