"""Files the package ships (`jointdraw.data`): `reference/` code tables and `vendor/datadocs/`
assets, found through `jointdraw.transforms.packaged`. Generated inboxes and cities beside them
(`demo/`, `generated/`) are git-ignored and never packaged."""
