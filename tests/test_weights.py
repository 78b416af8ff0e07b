"""``--weights imagenet``: torchvision's ImageNet file from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``), downloaded into it when missing, as torchvision does;
offline, one line says which file to put where. No test downloads: the downloader is
replaced."""

import http.client
import socket
from urllib.error import HTTPError, URLError

import pytest
import torch
from torchvision.models import DenseNet121_Weights, ResNet50_Weights

from streid.errors import UserError
from streid.models import ARCHITECTURES, build_model
from streid.weights import cached_weights_file

RESNET = ResNet50_Weights.IMAGENET1K_V1
URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch home; the folder torchvision's files are cached in under it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # no torch.hub.set_dir of another test
    return tmp_path / "torch/hub/checkpoints"


@pytest.fixture
def downloads(monkeypatch):
    """The calls of torch.hub's downloader, which writes a placeholder file instead."""
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix, progress))
        with open(dst, "wb") as f:
            f.write(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    return calls


@pytest.mark.parametrize("weights", [RESNET, DenseNet121_Weights.IMAGENET1K_V1], ids=str)
def test_a_cached_file_is_used_without_a_download(hub, downloads, weights):
    hub.mkdir(parents=True)
    cached = hub / weights.url.rsplit("/", 1)[1]
    cached.write_bytes(b"mine")
    assert cached_weights_file(weights) == cached
    assert downloads == []
    assert cached.read_bytes() == b"mine"


def test_a_missing_file_is_downloaded_into_the_cache_once(hub, downloads, capsys):
    path = cached_weights_file(RESNET)
    assert path == hub / "resnet50-0676ba61.pth" and path.read_bytes() == b"weights"
    # torchvision's call: the file's URL, into the cache, its hash prefix checked, a progress bar.
    assert downloads == [(URL, str(path), "0676ba61", True)]
    assert capsys.readouterr().out == f'Downloading: "{URL}" to {path}\n'
    assert cached_weights_file(RESNET) == path
    assert len(downloads) == 1


def offline_message(hub, why):
    return (
        f"ImageNet weights resnet50-0676ba61.pth not found in {hub}/ and could not be "
        f"downloaded ({why}): download {URL} into that folder, or pass --weights PATH (a .pth "
        f"state dict of the backbone) or --weights none (random initialisation)"
    )


@pytest.mark.parametrize(
    "error, why",
    [
        (URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
         "Temporary failure in name resolution"),
        (URLError(ConnectionRefusedError(111, "Connection refused")), "Connection refused"),
        (HTTPError(URL, 403, "Forbidden", {}, None), "HTTP Error 403: Forbidden"),
        (TimeoutError("timed out"), "timed out"),
        (http.client.IncompleteRead(b"abc", 7), "IncompleteRead(3 bytes read, 7 more expected)"),
        (RuntimeError('invalid hash value (expected "0676ba61", got "1234")'),
         'invalid hash value (expected "0676ba61", got "1234")'),
    ],
    ids=["no-network", "refused", "http-403", "timeout", "incomplete", "bad-hash"],
)  # fmt: skip
def test_offline_one_line_says_which_file_to_put_where(hub, monkeypatch, error, why):
    def fail(url, dst, hash_prefix=None, progress=True):
        raise error

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(UserError) as err:
        build_model(ARCHITECTURES["pcb"], 5, weights="imagenet")
    assert str(err.value) == offline_message(hub, why)
    assert not hub.parent.parent.exists()  # no folder left behind in the torch home


def test_a_cache_folder_that_cannot_be_made_says_so(tmp_path, monkeypatch, downloads):
    (tmp_path / "torch").write_text("a file, not a folder")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(UserError, match=r"could not be downloaded \(Not a directory\): download"):
        cached_weights_file(RESNET)
    assert downloads == []


def test_another_runtime_error_of_the_download_is_a_bug(hub, monkeypatch):
    def broken(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError("something else")

    monkeypatch.setattr(torch.hub, "download_url_to_file", broken)
    with pytest.raises(RuntimeError, match="something else"):
        cached_weights_file(RESNET)


def test_no_test_downloads(hub):
    """tests/conftest.py replaces the downloader in every test: offline, as here."""
    with pytest.raises(UserError, match="Temporary failure in name resolution"):
        cached_weights_file(RESNET)
