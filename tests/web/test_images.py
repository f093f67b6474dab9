"""Images on the Label page: fields naming an image of the queue's run are shown, served by ``/hitl/image``
only to users MLflow lets read the run, only as PNG/JPEG/GIF/WebP, never from elsewhere."""

from __future__ import annotations

import io
import posixpath
from urllib.parse import parse_qs, urlparse

import mlflow
import pandas as pd
import pytest
import requests
from PIL import Image

from .conftest import PASSWORDS, as_engineer

pytestmark = pytest.mark.web

DORA = ("dora", "Dora-pass-word-12")  # a reviewer whom MLflow denies the images' experiment
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__svg=1"><script>window.__svg=1</script></svg>'
PHOTO = "a photo of the row"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _logged_run(tmp_path, experiment: str, files: dict[str, bytes]) -> mlflow.entities.Run:
    """A run made by ``eng`` through the server, with ``files`` logged as its artifacts."""
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        for name in files:
            mlflow.log_artifact(str(tmp_path / name), artifact_path=posixpath.dirname(name))
    return mlflow.get_run(run.info.run_id)


@pytest.fixture(scope="module")
def images(site, hitl_server_sqlite, tmp_path_factory):
    """Queues (one plain, one blind) of a run with a PNG, an SVG and an HTML file named .png; another run too."""
    hitl_server_sqlite.users(dict([DORA]))
    hitl_server_sqlite.roles({DORA[0]: ["reviewer"]})
    with as_engineer(site):
        run = _logged_run(
            tmp_path_factory.mktemp("own"),
            "web-images",
            {"images/cat.png": _png(40, 30), "images/evil.svg": SVG, "images/fake.png": b"<html>x</html>"},
        )
        other = _logged_run(
            tmp_path_factory.mktemp("other"), "web-images-other", {"images/cat.png": _png(8, 8)}
        )
    run_id, root = run.info.run_id, run.info.artifact_uri
    values = [
        f"runs:/{run_id}/images/cat.png",  # 0: shown
        "images/cat.png",  # 1: relative to the queue's run: shown
        f"{root}/images/cat.png",  # 2: the run's mlflow-artifacts: location: shown
        f"runs:/{other.info.run_id}/images/cat.png",  # 3: another run: text
        f"runs:/{run_id}/images/../../../{other.info.run_id}/artifacts/images/cat.png",  # 4: traversal: text
        "images/evil.svg",  # 5: SVG: text
        "images/fake.png",  # 6: not an image: refused by the route
        "https://example.com/cat.png",  # 7: elsewhere: text, never fetched
        "file:///etc/cat.png",  # 8: text
        "/images/cat.png",  # 9: absolute: text
    ]
    rows = pd.DataFrame({"photo": values, "age": range(len(values))})
    selection = pd.DataFrame({"row": range(len(rows)), "reason": "picked-for-images", "score": 0.5})
    for name, blind in (("web-images", False), ("web-images-blind", True)):
        site.store.create_queue(
            name,
            rows=rows,
            selection=selection,
            classes=["No", "Yes"],
            actor="eng",
            blind=blind,
            run_id=run_id,
            predictions=["Yes"] * len(rows),
            confidences=[0.8765] * len(rows),
        )
    # MLflow's own rule: dora may read nothing of the images' experiment (every user may, by default).
    denied = requests.post(
        f"{site.url}/api/3.0/mlflow/users/permissions/grant",
        json={
            "username": DORA[0],
            "resource_type": "experiment",
            "resource_id": run.info.experiment_id,
            "permission": "DENY",
        },
        auth=site.admin,
        timeout=60,
    )
    assert denied.status_code == 200, denied.text
    return {"run": run, "other": other, "values": values}


def _image(
    site, images, item: int, *, queue: str = "web-images", user=("alice", PASSWORDS["alice"]), **query
):
    params = {"queue": queue, "item": item, "column": "photo", "run_id": images["run"].info.run_id, **query}
    return requests.get(f"{site.url}/hitl/image", params=params, auth=user, timeout=60)


def _shown(page) -> list[str]:
    """The natural widths of the images on the page once loaded, by their alt text."""
    page.wait_for_load_state("load")
    return page.evaluate(
        "Array.from(document.images).map(i => `${i.alt}=${i.complete ? i.naturalWidth : -1}`)"
    )


def test_an_image_of_the_queues_run_is_shown_on_the_label_page(site, images):
    page = site.page("alice")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    for item in (0, 1, 2):
        page.goto(f"/hitl/label?queue=web-images&item={item}")
        assert _shown(page) == ["image in column photo=40"]  # decoded by the browser: 40 px wide
        assert page.get_by_text(images["values"][item]).is_visible()  # the value is there as text too
    for item in (3, 4, 5, 7, 8, 9):  # elsewhere, another run, a way out, SVG: text only
        page.goto(f"/hitl/label?queue=web-images&item={item}")
        assert _shown(page) == [], images["values"][item]
        assert page.get_by_text(images["values"][item], exact=True).is_visible()
    assert page.evaluate("window.__svg") is None
    assert not [u for u in requested if not u.startswith(site.url)]  # example.com was never asked
    csp = requests.get(f"{site.url}/hitl/queues", auth=("alice", PASSWORDS["alice"]), timeout=60).headers
    assert "img-src 'self' data:;" in csp["Content-Security-Policy"]


def test_the_image_route_serves_only_images_of_the_queues_run(site, images):
    served = _image(site, images, 0)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.content == _png(40, 30)
    assert _image(site, images, 1).content == served.content == _image(site, images, 2).content
    for item in (3, 4, 5, 7, 8, 9):  # another run, traversal, SVG, elsewhere, file:, absolute
        refused = _image(site, images, item)
        assert refused.status_code == 404 and "names no image of its run" in refused.text, item
    fake = _image(site, images, 6)  # an HTML page named .png: its bytes decide
    assert fake.status_code == 404 and "is not a PNG, JPEG, GIF or WebP image" in fake.text
    assert "<html>x</html>" not in fake.text
    # The run named must be the queue's own, even one the user may read.
    foreign = _image(site, images, 0, run_id=images["other"].info.run_id)
    assert foreign.status_code == 404
    assert _image(site, images, 0, column="age").status_code == 404
    assert (
        requests.get(f"{site.url}/hitl/image", params={"queue": "web-images"}, timeout=60).status_code == 401
    )


def test_a_reviewer_mlflow_denies_the_run_gets_no_image(site, images):
    refused = _image(site, images, 0, user=DORA)
    assert refused.status_code == 403 and "may not read the artifacts of run" in refused.text
    assert "PNG" not in refused.text
    # MLflow's own artifact download says the same.
    own = requests.get(
        f"{site.url}/get-artifact",
        params={"path": "images/cat.png", "run_uuid": images["run"].info.run_id},
        auth=DORA,
        timeout=60,
    )
    assert own.status_code == 403


def test_a_blind_queue_serves_the_same_image_and_nothing_more(site, images):
    page = site.page("bob")
    page.goto("/hitl/label?queue=web-images-blind&item=0")
    assert _shown(page) == ["image in column photo=40"]
    source = page.content()
    for secret in ("0.876", "0.877", "picked-for-images", "model says"):
        assert secret not in source, secret
    src = page.get_by_role("img", name="image in column photo").get_attribute("src")
    assert sorted(parse_qs(urlparse(src).query)) == ["column", "item", "queue", "run_id"]
    blind = _image(site, images, 0, queue="web-images-blind", user=("bob", PASSWORDS["bob"]))
    assert blind.status_code == 200 and blind.content == _image(site, images, 0).content
    assert not [v for k, v in blind.headers.items() if "0.87" in v or "picked" in v]
