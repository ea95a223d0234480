"""Serve the seqadd web page on 127.0.0.1 (standard library only): `make web`.

Three folders behind one address, nothing fetched from the network:
  /           this folder (index.html, app.js, codec.js)
  /ort/       onnxruntime-web's dist files, from web/node_modules (after `npm ci`)
  /models/    the shipped models (runtime/seqadd_runtime/models, or --models), and
              /models/models.json listing each model folder's .onnx files

Every response carries the headers that make the page cross-origin isolated, which
onnxruntime-web needs to run on more than one thread (SharedArrayBuffer).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

WEB_DIR = Path(__file__).resolve().parent
ORT_DIR = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
MODELS_DIR = WEB_DIR.parent / "runtime" / "seqadd_runtime" / "models"
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def model_listing(models_dir: Path) -> list[dict]:
    """Each model folder with its .onnx files, fp32 (model.onnx) first."""
    listing = []
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        files = sorted(
            (f.name for f in folder.glob("*.onnx")), key=lambda n: (n != "model.onnx", n)
        )
        if files:
            listing.append({"name": folder.name, "files": files})
    return listing


class PageHandler(SimpleHTTPRequestHandler):
    """Static files from three roots, with cross-origin isolation and no caching."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
    }

    def __init__(self, *args, models_dir: Path, **kwargs) -> None:
        self.models_dir = models_dir
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        """The file behind a URL path; anything outside the three roots is not found."""
        parts = [p for p in unquote(urlsplit(path).path).split("/") if p]
        if any(part in (".", "..") or "\\" in part for part in parts):
            return str(WEB_DIR / "not-found")
        if parts[:1] == ["ort"]:
            return str(ORT_DIR.joinpath(*parts[1:]))
        if parts[:1] == ["models"]:
            return str(self.models_dir.joinpath(*parts[1:]))
        if parts[:1] in (["node_modules"], ["test"]):
            return str(WEB_DIR / "not-found")
        return str(WEB_DIR.joinpath(*parts))

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/models/models.json":
            body = json.dumps(model_listing(self.models_dir)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        """Quiet: the terminal shows the address, not every request."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqadd-web", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8022, help="port (0: any free port)")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="folder of model folders")
    args = parser.parse_args(argv)
    if not (ORT_DIR / "ort.wasm.min.mjs").is_file():
        print(f"seqadd-web: error: {ORT_DIR} is missing: run `npm ci` in web/", file=sys.stderr)
        return 2
    if not args.models.is_dir():
        print(f"seqadd-web: error: model folder {args.models} not found", file=sys.stderr)
        return 2
    handler = partial(PageHandler, models_dir=args.models.resolve())
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as error:
        print(
            f"seqadd-web: error: cannot listen on port {args.port}: {error.strerror}",
            file=sys.stderr,
        )
        return 2
    host, port = server.server_address[:2]
    print(f"seqadd web page: http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
