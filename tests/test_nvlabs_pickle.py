"""NVlabs .pkl files are read as data and never run: the networks in them compute what the
fixtures say, code hidden in them is refused.

The pickles are made here, in the layout NVlabs' `torch_utils.persistence` writes: every
network module pickles as `_reconstruct_persistent_obj(meta)`, meta = {type: 'class',
version: 6, module_src: the whole source file, class_name: the bare class name, state: the
module's __dict__}, with sub-modules nested the same way inside `state['_modules']`.
"""

import builtins
import contextlib
import os
import pickle
import subprocess
import sys
import types
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.networks import StyleGAN3Generator
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference
from cstylegan.snapshots.nvlabs_pickle import CLASS_AVERAGE_SAMPLES, NVlabsPickleError, load_nvlabs_pickle
from tests.conftest import run_cli
from tests.test_fixture_parity import ATOL, load_fixture, tensors_under

# Constructor signatures (names and defaults) of the official classes the loader reads
# defaults from; the pickled source holds these classes. Bodies are left out.
SIGNATURES = {
    "stylegan3": {  # NVlabs/stylegan3 training/networks_stylegan2.py
        "MappingNetwork": "z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None, "
                          "activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.998",
        "SynthesisBlock": "in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip', "
                          "resample_filter=[1,3,3,1], conv_clamp=256, use_fp16=False, fp16_channels_last=False, "
                          "fused_modconv_default=True, **layer_kwargs",
        "SynthesisNetwork": "w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=4, "
                            "**block_kwargs",
        "Generator": "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs",
        "DiscriminatorEpilogue": "in_channels, cmap_dim, resolution, img_channels, architecture='resnet', "
                                 "mbstd_group_size=4, mbstd_num_channels=1, activation='lrelu', conv_clamp=None",
        "Discriminator": "c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768, "
                         "channel_max=512, num_fp16_res=4, conv_clamp=256, cmap_dim=None, block_kwargs={}, "
                         "mapping_kwargs={}, epilogue_kwargs={}",
    },
    "ada": {  # NVlabs/stylegan2-ada-pytorch training/networks.py
        "MappingNetwork": "z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None, "
                          "activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.995",
        "SynthesisBlock": "in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip', "
                          "resample_filter=[1,3,3,1], conv_clamp=None, use_fp16=False, fp16_channels_last=False, "
                          "**layer_kwargs",
        "SynthesisNetwork": "w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0, "
                            "**block_kwargs",
        "Generator": "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}",
        "DiscriminatorEpilogue": "in_channels, cmap_dim, resolution, img_channels, architecture='resnet', "
                                 "mbstd_group_size=4, mbstd_num_channels=1, activation='lrelu', conv_clamp=None",
        "Discriminator": "c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768, "
                         "channel_max=512, num_fp16_res=0, conv_clamp=None, cmap_dim=None, block_kwargs={}, "
                         "mapping_kwargs={}, epilogue_kwargs={}",
    },
    "stylegan3-t": {"SynthesisInput": "w_dim, channels, size, sampling_rate, bandwidth",
                    "SynthesisNetwork": "w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, "
                                        "num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2**2.1, "
                                        "last_stopband_rel=2**0.3, margin_size=10, output_scale=0.25, num_fp16_res=4, "
                                        "**layer_kwargs",
                    "Generator": "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs"},
    "augment": {"AugmentPipe": "xflip=0, rotate90=0, xint=0, xint_max=0.125"},
    "custom": {"MyNetwork": "width=64"},
}


def module_source(flavour, marker) -> str:
    """A source file that, if anyone ran it, would create `marker`."""
    lines = ["import pathlib", f"pathlib.Path({str(marker)!r}).touch()", ""]
    for name, signature in SIGNATURES[flavour].items():
        lines += [f"class {name}:", f"    def __init__(self, {signature}):", "        pass", ""]
    return "\n".join(lines)


@contextlib.contextmanager
def fake_modules(*modules):
    """Register stand-ins for NVlabs' modules (and their packages) while pickling only."""
    names = sorted({".".join(m.__name__.split(".")[:i + 1]) for m in modules for i in range(m.__name__.count(".") + 1)})
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    for module in modules:
        sys.modules[module.__name__] = module
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def fake_module(name, **members):
    module = types.ModuleType(name)
    for key, value in members.items():
        value.__module__ = name
        value.__qualname__ = key
        setattr(module, key, value)
    return module


def _reconstruct_persistent_obj(meta):
    raise AssertionError("NVlabs' reconstruct function must never be called by our loader")


class EasyDict(dict):
    """Pickles as dnnlib.util.EasyDict (the official constructor kwargs are EasyDicts)."""


PERSISTENCE = fake_module("torch_utils.persistence", _reconstruct_persistent_obj=_reconstruct_persistent_obj)
DNNLIB_UTIL = fake_module("dnnlib.util", EasyDict=EasyDict)


class Persistent:
    """Pickles as an instance of a class decorated with persistence.persistent_class does:
    its __reduce__ gives (_reconstruct_persistent_obj, (meta,), None)."""

    def __init__(self, class_name, module_src, state):
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,), None


def persistent_module(module, module_src, init_kwargs=None, skip_buffers=()) -> Persistent:
    """`module` and every sub-module as persistent objects; state = the module's __dict__ as
    NVlabs' networks have it (plain attributes, float gains as np.float64, parameters,
    buffers, sub-modules, hooks, init args)."""
    state = {key: np.float64(value) if isinstance(value, float) else value
             for key, value in vars(module).items() if isinstance(value, (bool, int, float, str, list, type(None)))}
    state.update(
        training=False,
        _parameters=OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                                for k, v in module._parameters.items()),
        _buffers=OrderedDict((k, v.detach().clone()) for k, v in module._buffers.items()
                             if k not in skip_buffers and v is not None),
        _non_persistent_buffers_set=set(),
        _backward_hooks=OrderedDict(), _forward_hooks=OrderedDict(), _forward_pre_hooks=OrderedDict(),
        _state_dict_hooks=OrderedDict(), _load_state_dict_pre_hooks=OrderedDict(),
        _modules=OrderedDict((k, persistent_module(v, module_src, skip_buffers=skip_buffers))
                             for k, v in module._modules.items()),
        _init_args=(),
        _init_kwargs=init_kwargs if init_kwargs is not None else {},
    )
    return Persistent(type(module).__name__, module_src, state)


def easy(d):
    return EasyDict({k: easy(v) if isinstance(v, dict) else v for k, v in d.items()})


def official_kwargs(flavour, meta):
    """G and D constructor kwargs as the official training loops record them."""
    gk, dk = meta["G_kwargs"], meta["D_kwargs"]
    common = dict(c_dim=gk["c_dim"], img_resolution=gk["img_resolution"], img_channels=gk["img_channels"])
    synthesis = {k: gk[k] for k in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")}
    if flavour == "ada":
        G = dict(z_dim=gk["z_dim"], w_dim=gk["w_dim"], mapping_kwargs=easy(gk["mapping_kwargs"]),
                 synthesis_kwargs=easy(synthesis), **common)
    else:
        G = dict(z_dim=gk["z_dim"], w_dim=gk["w_dim"], mapping_kwargs=easy(gk["mapping_kwargs"]), **synthesis,
                 fused_modconv_default="inference_only", **common)
    D = dict(block_kwargs=easy(dict(freeze_layers=0)), mapping_kwargs=easy(dk.get("mapping_kwargs", {})),
             epilogue_kwargs=easy(dict(mbstd_group_size=4)), architecture=dk["architecture"],
             channel_base=dk["channel_base"], channel_max=dk["channel_max"], num_fp16_res=0,
             conv_clamp=dk["conv_clamp"], **common)
    return easy(G), easy(D)


def write_pickle(path, data, *extra_modules):
    with fake_modules(PERSISTENCE, DNNLIB_UTIL, *extra_modules):
        with open(path, "wb") as file:
            pickle.dump(data, file)
    return path


@pytest.fixture(scope="module", params=["stylegan3", "ada"])
def official_pkl(request, tmp_path_factory):
    """sg2_cond32 in an official pickle: G, D, G_ema, augment_pipe (p = 0.25), training_set_kwargs."""
    flavour = request.param
    meta, t = load_fixture("sg2_cond32")
    folder = tmp_path_factory.mktemp(f"pkl_{flavour}")
    marker = folder / "module_src_was_run"
    src = module_source(flavour, marker)
    G = Generator(**meta["G_kwargs"])
    G.load_state_dict(tensors_under("G.", t), strict=False)
    D = Discriminator(**meta["D_kwargs"])
    D.load_state_dict(tensors_under("D.", t))
    augment = torch.nn.Module()
    augment.register_buffer("p", torch.tensor(0.25))
    augment.register_buffer("Hz_geom", torch.randn(12))
    G_kwargs, D_kwargs = official_kwargs(flavour, meta)
    G_pickled = persistent_module(G, src, G_kwargs, skip_buffers={"w_avg_per_class"})
    data = dict(
        training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="faces.zip", use_labels=True,
                                 max_size=100, xflip=False, resolution=32),
        G=G_pickled,
        D=persistent_module(D, src, D_kwargs),
        G_ema=persistent_module(G, src, G_kwargs, skip_buffers={"w_avg_per_class"}),
        augment_pipe=Persistent("AugmentPipe", module_source("augment", marker),
                                persistent_module(augment, "", dict(xflip=1, rotate90=1)).meta["state"]),
    )
    path = write_pickle(folder / f"{flavour}-cond32.pkl", data)
    assert "torch_utils.persistence" not in sys.modules and "dnnlib.util" not in sys.modules
    return dict(path=path, marker=marker, meta=meta, t=t, flavour=flavour)


def test_official_layout_is_read_without_running_its_source(official_pkl):
    snapshot = load_nvlabs_pickle(official_pkl["path"])
    assert not official_pkl["marker"].exists()
    assert set(snapshot) >= {"G", "G_ema", "D", "G_kwargs", "D_kwargs", "class_names", "cur_nimg", "ada_p", "format"}
    assert snapshot["class_names"] == ["class0", "class1", "class2", "class3"]
    assert snapshot["cur_nimg"] == 0 and snapshot["ada_p"] == pytest.approx(0.25)
    assert set(snapshot["augment_pipe"]) == {"p", "Hz_geom"}
    G_kwargs, D_kwargs = snapshot["G_kwargs"], snapshot["D_kwargs"]
    assert "fused_modconv_default" not in G_kwargs and "synthesis_kwargs" not in G_kwargs
    assert G_kwargs["conv_clamp"] == 256 and G_kwargs["channel_base"] == 2048 and G_kwargs["architecture"] == "skip"
    # Defaults the pickle leaves out come from its own source: they differ between the repos.
    assert G_kwargs["mapping_kwargs"]["w_avg_beta"] == {"stylegan3": 0.998, "ada": 0.995}[official_pkl["flavour"]]
    assert D_kwargs["epilogue_kwargs"] == {"mbstd_group_size": 4} and D_kwargs["architecture"] == "resnet"
    # The snapshot is plain tensors and data.
    for key in ("G", "G_ema", "D"):
        assert all(type(v) is torch.Tensor for v in snapshot[key].values())


@pytest.mark.parametrize("tag,psi", [("psi100", 1.0), ("psi070", 0.7)])
def test_networks_reproduce_the_fixture(official_pkl, tag, psi):
    t = official_pkl["t"]
    opened = open_for_inference(official_pkl["path"])  # the .pkl goes through our ordinary loader
    G = opened.G
    snapshot = load_snapshot(official_pkl["path"])
    D = Discriminator(**snapshot["D_kwargs"]).eval()
    D.load_state_dict(snapshot["D"])
    with torch.no_grad():
        img = G(t["z"], t["c"], truncation_psi=psi, truncation_center="global", noise_mode="const")
        logits = D(img, t["c"])
    torch.testing.assert_close(img, t[f"{tag}.img"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits, t[f"{tag}.D_logits"], rtol=0, atol=ATOL)
    assert opened.class_names == ["class0", "class1", "class2", "class3"]
    assert not official_pkl["marker"].exists()


def test_per_class_w_avg_is_the_mean_w_of_each_class(official_pkl):
    snapshot = load_nvlabs_pickle(official_pkl["path"])
    G = Generator(**snapshot["G_kwargs"]).eval()
    G.load_state_dict(snapshot["G_ema"])
    estimate = G.mapping.w_avg_per_class
    torch.testing.assert_close(snapshot["G"]["mapping.w_avg_per_class"], estimate)
    n = 4000
    z = torch.from_numpy(np.random.RandomState(123).randn(n, G.z_dim)).float()
    for k in range(G.c_dim):
        c = torch.zeros(n, G.c_dim)
        c[:, k] = 1
        with torch.no_grad():
            w = G.mapping(z, c)[:, 0]
        # Both are means of independent samples: allow 5 standard errors.
        tolerance = 5 * w.std(dim=0) * (1 / CLASS_AVERAGE_SAMPLES + 1 / n) ** 0.5 + 1e-6
        assert ((estimate[k] - w.mean(dim=0)).abs() <= tolerance).all(), k
    assert (estimate[0] - estimate[1]).abs().max() > 10 * tolerance.max()  # the classes do differ


@pytest.mark.slow
@pytest.mark.parametrize("official_pkl", ["stylegan3"], indirect=True)
def test_generate_draws_from_a_pkl(official_pkl, tmp_path):
    result = run_cli("generate.py", "--network", str(official_pkl["path"]), "--class", "1", "--seeds", "0",
                     "--outdir", str(tmp_path), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "class1" / "seed0000.png").size == (32, 32)
    assert not official_pkl["marker"].exists()


class Payload:
    """Pickles as a call of `func(*args)`: what a malicious .pkl does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker):
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "builtins.eval": Payload(builtins.eval, touch),
        "builtins.exec": Payload(builtins.exec, touch),
        "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"])
def test_code_execution_payloads_are_refused(tmp_path, name):
    marker = tmp_path / "payload_ran"
    payload = payloads(marker)[name]
    global_name = f"{payload.func.__module__}.{payload.func.__qualname__}"  # os.system is posix.system
    # On its own, and hidden in an otherwise harmless network-pickle-like dict.
    for data in (payload, dict(training_set_kwargs=dict(path=payload), G=None)):
        path = write_pickle(tmp_path / "evil.pkl", data)
        with pytest.raises(NVlabsPickleError) as error:
            load_snapshot(path)
        message = str(error.value)
        assert global_name in message and "not a plain NVlabs network pickle" in message
        assert "\n" not in message
        assert not marker.exists()


def test_generate_refuses_a_payload_in_one_line(tmp_path):
    marker = tmp_path / "payload_ran"
    path = write_pickle(tmp_path / "evil.pkl", payloads(marker)["os.system"])
    result = run_cli("generate.py", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "posix.system" in result.stderr and "not a plain NVlabs network pickle" in result.stderr
    assert not marker.exists()


def tiny_network_pickle(tmp_path, flavour, class_name, init_kwargs):
    """A network pickle whose G is a tensor-less persistent object of the given source."""
    marker = tmp_path / "module_src_was_run"
    state = dict(_parameters=OrderedDict(), _buffers=OrderedDict(), _modules=OrderedDict(), _init_args=(),
                 _init_kwargs=easy(init_kwargs), training=False)
    G = Persistent(class_name, module_source(flavour, marker), state)
    return write_pickle(tmp_path / "net.pkl", dict(G=G, G_ema=G, D=None, augment_pipe=None)), marker


def test_stylegan3_pickle_reproduces_the_fixture(tmp_path):
    meta, t = load_fixture("sg3t_cond32")
    marker = tmp_path / "module_src_was_run"
    G = StyleGAN3Generator(**meta["G_kwargs"])
    G.load_state_dict(tensors_under("G.", t), strict=False)
    official = easy({**meta["G_kwargs"], "num_fp16_res": 0})
    G_pickled = persistent_module(G, module_source("stylegan3-t", marker), official, skip_buffers={"w_avg_per_class"})
    path = write_pickle(tmp_path / "sg3t.pkl", dict(G=G_pickled, G_ema=G_pickled, D=None, augment_pipe=None))
    opened = open_for_inference(path)
    loaded = opened.G
    assert isinstance(loaded, StyleGAN3Generator) and load_snapshot(path)["G_family"] == "stylegan3"
    with torch.no_grad():
        img = loaded(t["z"], t["c"], truncation_center="global", noise_mode="const")
    torch.testing.assert_close(img, t["psi100.img"], rtol=0, atol=ATOL)
    assert opened.class_names == ["class0", "class1", "class2", "class3"] and not marker.exists()


def test_arguments_that_change_the_network_are_refused(tmp_path):
    path, _ = tiny_network_pickle(tmp_path, "stylegan3", "Generator", dict(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={}, use_radial_filters=True))
    with pytest.raises(NVlabsPickleError, match="use_radial_filters=True"):
        load_nvlabs_pickle(path)


def test_unknown_classes_and_tensorflow_pickles_are_refused(tmp_path):
    path, _ = tiny_network_pickle(tmp_path, "custom", "MyNetwork", dict(width=8))
    with pytest.raises(NVlabsPickleError, match="'MyNetwork' from an unknown source"):
        load_nvlabs_pickle(path)

    class Network(dict):
        pass

    tflib = fake_module("dnnlib.tflib.network", Network=Network)
    path = write_pickle(tmp_path / "tf.pkl", (Network(), Network(), Network()), tflib)
    with pytest.raises(NVlabsPickleError, match="TensorFlow StyleGAN"):
        load_nvlabs_pickle(path)


def test_a_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    """torch does not bounds-check a pickled view; reading one would read foreign memory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage's deprecation notice
        storage = torch.zeros(4).storage()  # what a pickled tensor holds
    for size, stride in (((4,), (1,)), ((1000,), (1,)), ((2, 2), (3, 1))):
        view = Payload(torch._utils._rebuild_tensor_v2, storage, 0, size, stride, False, OrderedDict())
        path = write_pickle(tmp_path / "view.pkl", dict(G=None, tensor=view))
        if size == (4,):
            with pytest.raises(NVlabsPickleError, match="no G_ema or G network"):  # read fine; not a network
                load_nvlabs_pickle(path)
        else:
            with pytest.raises(NVlabsPickleError, match="a tensor in the pickle is not plain data"):
                load_nvlabs_pickle(path)
