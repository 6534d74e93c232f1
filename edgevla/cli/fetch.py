"""`edgevla fetch REPO_ID`: download a policy (and the VLM config/tokenizer it names) into the
local Hugging Face cache, so that loading it later works offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgevla.errors import EdgevlaError

VLM_FILES = ["*.json", "*.txt", "*.jinja"]  # config, tokenizer, processor: no weights needed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo_id", help="e.g. lerobot/smolvla_base")
    parser.add_argument("--revision", help="branch, tag or commit")
    parser.set_defaults(handler=run)


def download(repo_id: str, revision: str | None = None, allow_patterns: list[str] | None = None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns))
    except LocalEntryNotFoundError as err:
        raise EdgevlaError(
            f"cannot download '{repo_id}': no network or HF_HUB_OFFLINE=1 is set; run this on a machine "
            "with network, then copy ~/.cache/huggingface (or the downloaded folder) to this one"
        ) from err
    except (HfHubHTTPError, OSError) as err:
        raise EdgevlaError(f"the Hugging Face hub refused '{repo_id}': {str(err).splitlines()[0]}") from err


def run(args: argparse.Namespace) -> int:
    folder = download(args.repo_id, args.revision)
    print(f"{args.repo_id} -> {folder}")
    config = folder / "config.json"
    if config.is_file():
        vlm = json.loads(config.read_text()).get("vlm_model_name")
        if vlm and not Path(vlm).is_dir():
            print(f"{vlm} (config + tokenizer) -> {download(vlm, allow_patterns=VLM_FILES)}")
    return 0
