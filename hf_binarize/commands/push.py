"""``hf-binarize push``: a folder, as it is, to a Hub model repository."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

from .console import CommandError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "push", help="upload a model folder (with its README.md model card) to the Hugging Face Hub",
        description="Uploads FOLDER, as it is, to the Hub model repository REPO_ID, creating the repository if it "
                    "does not exist. The token comes from --token, else HF_TOKEN, else `hf auth login`. The "
                    "folder is only read.")
    parser.add_argument("--folder", required=True, help="the folder to upload (quantize's OUTPUT_DIR, say)")
    parser.add_argument("--repo-id", required=True, help="OWNER/NAME of the model repository")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the stored login); prefer "
                                        "HF_TOKEN, as a command line is visible to other users")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from huggingface_hub import HfApi, get_token

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder: pass the folder to upload")
    token = args.token or get_token()
    if not token:
        raise CommandError("no Hugging Face token: set HF_TOKEN, run `hf auth login` or pass --token")
    if not (folder / "README.md").is_file():
        print(f"note: {folder} has no README.md model card (hf-binarize card writes one)", file=sys.stderr)
    api = HfApi(token=token)
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        commit = api.upload_folder(repo_id=args.repo_id, folder_path=folder, create_pr=args.create_pr,
                                   commit_message="Upload with hf-binarize")
    except _network_errors() as error:
        raise CommandError(f"cannot reach the Hugging Face Hub ({api.endpoint}: {error}): the folder {folder} is "
                           "unchanged") from None
    print(commit.pr_url if args.create_pr else commit.commit_url)


def _network_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub raises when the Hub cannot be reached: offline mode raises ``ConnectionError``; a
    failed connection or a timeout raises the transport error of its HTTP client, httpx (huggingface_hub 1.x) or
    httpx2 (later releases)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for client in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            errors.append(importlib.import_module(client).TransportError)
    return tuple(errors)
