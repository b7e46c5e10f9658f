"""A web page to try a snapshot by hand: `python -m cstylegan.app --network SNAP`.

The page (page.html, plain JS, nothing fetched from elsewhere) picks a class as style
and gender, a seed, truncation and a class swap, draws one character of every class, and
restyles an uploaded face photo as every class. It asks this server for PNGs:

    GET  /                  the page
    GET  /api/info          JSON: classes (name, style, gender, seen), styles, genders, num_ws, resolution, ...
    GET  /api/image?class=red_male&seed=7&psi=0.7[&style_from=blue_male&swap_layer=3]
    GET  /api/every-class?seed=7&psi=0.7          one grid: a row per style, a column per gender
    POST /api/project?class=red_male&swap_layer=3  body: the photo's bytes

A request the server cannot answer gets HTTP 400 (404 for an unknown path) and the JSON
{"error": "<one line>"} that the page shows; tracebacks stay in the server's terminal.
"""

import errno
import io
import json
import math
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import click
import numpy as np
import torch
from PIL import Image, ImageOps

from cstylegan.generation.drawer import Drawer
from cstylegan.generation.image_grid import make_grid, to_uint8
from cstylegan.generation.projected_w import class_restyle_ws
from cstylegan.projection.optimiser import load_target, project
from cstylegan.projection.perceptual import PERCEPTUAL_KINDS, perceptual_distance
from cstylegan.runtime.cli import Command
from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.errors import UserError
from cstylegan.snapshots.checkpoint import open_for_inference

PAGE = Path(__file__).with_name("page.html")
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_SEED = 2**32 - 1  # np.random.RandomState takes seeds up to here
JSON_TYPE = "application/json"
PNG_TYPE = "image/png"


class RequestError(UserError):
    """A request we cannot answer; its one-line message goes back to the page as JSON."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def split_class_name(name: str) -> tuple:
    """(style, gender) from `<style>_<gender>`, split on the last underscore; gender '' if none."""
    style, _, gender = name.rpartition("_")
    return (style, gender) if style else (name, "")


def class_table(class_names) -> tuple:
    """(styles, genders, rows): rows[i][j] is the index of class styles[i]_genders[j], or None
    where that style lacks that gender; styles and genders in order of first appearance."""
    pairs = [split_class_name(name) for name in class_names]
    styles = list(dict.fromkeys(style for style, _ in pairs))
    genders = list(dict.fromkeys(gender for _, gender in pairs))
    rows = [[pairs.index((style, gender)) if (style, gender) in pairs else None for gender in genders]
            for style in styles]
    return styles, genders, rows


def side_by_side(images: list, gap: int = 16) -> Image.Image:
    """One picture of `images` left to right, top-aligned on white."""
    canvas = Image.new(images[0].mode, (sum(im.width for im in images) + gap * (len(images) - 1),
                                        max(im.height for im in images)), "white")
    left = 0
    for image in images:
        canvas.paste(image, (left, 0))
        left += image.width + gap
    return canvas


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def open_photo(data: bytes) -> Image.Image:
    """The uploaded bytes as an upright RGB picture (phones store rotation in EXIF), or RequestError."""
    try:
        photo = Image.open(io.BytesIO(data))
        photo.load()
    except (OSError, Image.DecompressionBombError):  # not an image, truncated, or absurdly large
        raise RequestError("the upload is not an image Pillow can read; upload a PNG or JPEG photo") from None
    return ImageOps.exif_transpose(photo).convert("RGB")


def query_int(query: dict, name: str, low: int, high: int) -> int:
    text = query.get(name, "")
    try:
        value = int(text)
    except ValueError:
        raise RequestError(f"{name} {text!r} is not an integer") from None
    if not low <= value <= high:
        raise RequestError(f"{name} {value} is outside {low}..{high}")
    return value


def query_float(query: dict, name: str) -> float:
    text = query.get(name, "")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RequestError(f"{name} {text!r} is not a number")
    return value


def seed_and_psi(query: dict) -> tuple:
    return query_int(query, "seed", 0, MAX_SEED), query_float(query, "psi")


class Studio:
    """The generator and what the page asks of it. One lock serialises every use of G:
    request threads would otherwise interleave on one module (and one GPU)."""

    def __init__(self, G, labels, device, project_steps: int, network_name: str, distance=None):
        """`labels`: the network's LabelSpace; with attribute labels every combination is a class."""
        self.G, self.labels, self.class_names, self.device = G, labels, list(labels.class_names), device
        self.project_steps, self.network_name, self.distance = project_steps, network_name, distance
        self.lock = threading.Lock()
        self.drawer = Drawer(G, device, label_space=labels)  # psi comes with each request
        self.styles, self.genders, self.table = class_table(self.class_names)

    def info(self) -> dict:
        classes = []
        for name in self.class_names:
            style, gender = split_class_name(name)
            classes.append(dict(name=name, style=style, gender=gender, seen=name in self.labels.seen))
        return dict(network=self.network_name, resolution=self.G.img_resolution, num_ws=self.G.num_ws,
                    classes=classes, styles=self.styles, genders=self.genders, project_steps=self.project_steps,
                    max_upload_bytes=MAX_UPLOAD_BYTES)

    def class_index(self, query: dict, name: str, required: bool = True):
        """The class the query names under `name`; None on an unconditional network or when optional and absent."""
        given = query.get(name, "")
        if not self.G.c_dim:
            if given:
                raise RequestError(f"{name}={given!r} given, but this network is unconditional")
            return None
        if not given and not required:
            return None
        if given not in self.class_names:
            raise RequestError(f"{name}={given!r} is not a class of this network; known classes: "
                               f"{', '.join(self.class_names)}")
        return self.class_names.index(given)

    def swap_layer(self, query: dict) -> int:
        return query_int(query, "swap_layer", 1, self.G.num_ws - 1)

    def _by_class_table(self, images: np.ndarray) -> Image.Image:
        """Images of every class in a grid: a row per style, a column per gender, white where a style lacks one."""
        blank = np.full_like(images[0], 255)
        cells = np.stack([blank if index is None else images[index] for row in self.table for index in row])
        column_labels = self.genders if any(self.genders) else None
        return make_grid(cells, len(self.genders), row_labels=self.styles, column_labels=column_labels)

    def image(self, seed: int, psi: float, class_index, style_index=None, swap_layer=None) -> Image.Image:
        """One character; with style_index, its first swap_layer ws from class_index and the rest from style_index."""
        with self.lock:
            return make_grid(self.drawer.image(seed, class_index, style_index, swap_layer, psi), columns=1)

    def every_class(self, seed: int, psi: float) -> Image.Image:
        """The same z drawn as every class."""
        with self.lock:
            images = np.concatenate([self.drawer.image(seed, k, psi=psi) for k in range(len(self.class_names))])
        return self._by_class_table(images)

    def restyle_photo(self, photo: Image.Image, class_index, swap_layer) -> Image.Image:
        """The photo and its projection into W; beside them, on a conditional network, the
        projection as every class (its first swap_layer ws kept, the rest the class's average w)."""
        target = load_target(photo, self.G.img_resolution)
        with self.lock:  # the projection needs autograd (no no_grad) and borrows G's noise buffers
            vectors = self.labels.class_vectors if self.G.c_dim else None
            ws = project(self.G, target.to(self.device), steps=self.project_steps, class_index=class_index,
                         distance=self.distance, class_vectors=vectors).ws
            with torch.no_grad():
                restyled = [class_restyle_ws(self.G, ws, k, swap_layer, self.own_average(k))
                            for k in range(len(self.class_names))]
                images = self.drawer.images(torch.cat([ws, *restyled]))
        projection, every_class = images[:1], images[1:]
        pair = make_grid(np.concatenate([to_uint8(target), projection]), columns=2,
                         column_labels=["photo", "projection"])
        return side_by_side([pair, self._by_class_table(every_class)]) if self.G.c_dim else pair


    def own_average(self, class_index):
        """None where the mapping tracks the class's average w; computed for attribute classes."""
        return self.drawer.average(class_index) if self.labels.attributes else None


class StudioServer(ThreadingHTTPServer):
    """The HTTP server, with the Studio its request handlers draw with."""

    def __init__(self, address, studio: Studio):
        super().__init__(address, PageHandler)
        self.studio = studio


class PageHandler(BaseHTTPRequestHandler):
    server: StudioServer

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def log_message(self, format, *args):
        """Quiet: the page asks for an image at every slider step, and a line each would bury real errors."""

    def _get(self, path: str, query: dict) -> tuple:
        studio = self.server.studio
        if path == "/":
            return "text/html; charset=utf-8", PAGE.read_bytes()
        if path == "/api/info":
            return JSON_TYPE, json.dumps(studio.info()).encode()
        if path == "/api/image":
            seed, psi = seed_and_psi(query)
            class_index = studio.class_index(query, "class")
            style_index = studio.class_index(query, "style_from", required=False)
            swap_layer = studio.swap_layer(query) if style_index is not None else None
            return PNG_TYPE, png_bytes(studio.image(seed, psi, class_index, style_index, swap_layer))
        if path == "/api/every-class":
            if not studio.G.c_dim:
                raise RequestError("this network is unconditional: it has no classes to draw")
            return PNG_TYPE, png_bytes(studio.every_class(*seed_and_psi(query)))
        raise RequestError(f"no such page: {path}", status=404)

    def _post(self, path: str, query: dict) -> tuple:
        if path != "/api/project":
            raise RequestError(f"no such page: {path}", status=404)
        upload = self._read_upload()  # first: a client still sending could miss an early answer
        studio = self.server.studio
        class_index = studio.class_index(query, "class")
        swap_layer = studio.swap_layer(query) if studio.G.c_dim else None
        photo = open_photo(upload)
        return PNG_TYPE, png_bytes(studio.restyle_photo(photo, class_index, swap_layer))

    def _read_upload(self) -> bytes:
        """The request body, at most MAX_UPLOAD_BYTES. A larger one is read and dropped, so
        that the client, still sending, gets our answer rather than a reset connection."""
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise RequestError("the upload has no Content-Length; send the photo's bytes as the request body")
        length = int(length)
        if length > MAX_UPLOAD_BYTES:
            while length > 0:
                chunk = self.rfile.read(min(length, 2**20))
                if not chunk:
                    break
                length -= len(chunk)
            raise RequestError(f"the photo is over {MAX_UPLOAD_BYTES // 2**20} MB; upload a smaller one")
        return self.rfile.read(length)

    def _answer(self, route):
        url = urlsplit(self.path)
        try:
            content_type, body = route(url.path, dict(parse_qsl(url.query, keep_blank_values=True)))
            status = 200
        except RequestError as error:
            status, content_type, body = error.status, JSON_TYPE, json.dumps({"error": str(error)}).encode()
        except Exception as error:
            traceback.print_exc()
            message = f"internal error ({type(error).__name__}); the server's terminal has the details"
            status, content_type, body = 500, JSON_TYPE, json.dumps({"error": message}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:  # the page moved on (a newer slider position) and closed the request
            pass


@click.command(cls=Command)
@click.option("--network", "network_path", required=True, help="Snapshot to draw from.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free one).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--project-steps", type=click.IntRange(min=1), default=200, show_default=True,
              help="Optimisation steps to project an uploaded photo into W: more is closer and slower.")
@click.option("--perceptual", type=click.Choice(PERCEPTUAL_KINDS), default="pixel", show_default=True,
              help="The projection's distance, as in python -m cstylegan.projection.")
def main(network_path, host, port, device, project_steps, perceptual):
    """Serve a page to draw the snapshot's classes, swap them, and restyle a face photo as every class."""
    device = pick_device(device)
    opened = open_for_inference(network_path, device, with_D=True)
    if opened.labels.kind == "vector":
        raise UserError(f"{network_path} was trained on vector labels, which the page cannot draw yet; "
                        "draw it with generate.py --label")
    distance = perceptual_distance(perceptual, opened.D, device)
    studio = Studio(opened.G, opened.labels, device, project_steps, Path(network_path).name, distance)
    try:
        server = StudioServer((host, port), studio)
    except OSError as error:  # the port is taken, or the host is not an address of this machine
        hint = "; pass another --port" if error.errno == errno.EADDRINUSE else ""
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    click.echo(f"Serving {network_path} on http://{host}:{server.server_address[1]} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
