"""Read NVlabs StyleGAN2 network pickles (`.pkl`) without running the code stored in them.

stylegan2-ada-pytorch and stylegan3 save `{G, D, G_ema, augment_pipe, training_set_kwargs}`
with plain `pickle`. Each network module is a "persistent" object: it pickles as a call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` whose `meta` holds the whole
source file of its class (`module_src`), the bare class name (`Generator`, not a dotted
path), and the module's `__dict__` (`state`: `_parameters`, `_buffers`, `_modules`,
`_init_args`, `_init_kwargs`, ...). Every sub-module (`FullyConnectedLayer`,
`SynthesisBlock`, ...) is itself persistent, so `_modules` holds nested calls of the
same kind. Their loader executes `module_src`; this one never does.

`_NVlabsUnpickler.find_class` hands out only the callables that rebuild tensors and
plain containers (`ALLOWED_GLOBALS`); the persistent-object hook becomes a function
that turns `meta` into data (a `PersistentObject`). Any other global is refused before
anything is called. The source text is parsed with `ast` (never executed) to tell which
official file it is and to read the constructor defaults the pickle relies on.
"""

import ast
import collections
import io
import math
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cstylegan.networks import GENERATORS, StyleGAN3Generator
from cstylegan.networks import StyleGAN2Generator as Generator
from cstylegan.networks.discriminator import Discriminator
from cstylegan.snapshots.format import FORMAT, CheckpointError

GENERATOR_FAMILY = {cls: family for family, cls in GENERATORS.items()}

try:  # numpy 2 keeps these in numpy._core, numpy 1 in numpy.core
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct, scalar as _numpy_scalar
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct, scalar as _numpy_scalar

CLASS_AVERAGE_SAMPLES = 2000  # z per class for the per-class w_avg estimate
CLASS_AVERAGE_SEED = 0


class NVlabsPickleError(CheckpointError):
    """An NVlabs pickle that cannot be imported; the message is one line."""


# ----------------------------------------------------------------------------------------
# What a pickled persistent module becomes.

@dataclass
class PickledSource:
    """The `module_src` of a persistent class, parsed (not run)."""
    module: str          # official file it is, e.g. 'training.networks_stylegan2'; '?' if unknown
    constructors: dict   # class name -> (parameter names, {parameter: literal default})


@dataclass
class PersistentObject:
    """One pickled NVlabs module as data."""
    class_name: str      # as stored in the pickle: 'Generator'
    source: PickledSource
    init_args: tuple
    init_kwargs: dict
    tensors: dict        # dotted name -> tensor, sub-modules included ('mapping.fc0.weight')

    @property
    def qualified_name(self) -> str:
        return f"{self.source.module}.{self.class_name}"

    def default(self, class_name: str, parameter: str):
        """The default of `class_name.__init__(parameter=...)` in the pickled source."""
        defaults = self.source.constructors.get(class_name, ((), {}))[1]
        if parameter not in defaults:
            raise NVlabsPickleError(
                f"cannot read the default of {class_name}({parameter}=...) from the source stored in the pickle "
                f"of {self.qualified_name}; it is not an NVlabs StyleGAN2 file cstylegan knows")
        return defaults[parameter]

    def kwargs(self) -> dict:
        """init args and kwargs together, by name (positional args named from the source)."""
        names = self.source.constructors.get(self.class_name, ((), {}))[0]
        if len(self.init_args) > len(names):
            raise NVlabsPickleError(f"{self.qualified_name} was built with {len(self.init_args)} positional "
                                    "arguments that the stored source does not name")
        return {**dict(zip(names, self.init_args)), **self.init_kwargs}


def _parse_source(module_src: str) -> PickledSource:
    try:
        tree = ast.parse(module_src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise NVlabsPickleError("the source code stored in the pickle does not parse as Python") from None
    constructors = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            constructors[node.name] = _signature(init) if init is not None else ((), {})
    classes = set(constructors)
    # Told apart by classes (and one argument) that only that file has.
    if "SynthesisInput" in classes:
        module = "training.networks_stylegan3"
    elif "AugmentPipe" in classes:
        module = "training.augment"
    elif "SynthesisNetwork" in classes and "fused_modconv_default" in module_src:
        module = "training.networks_stylegan2"  # stylegan3 repository
    elif "SynthesisNetwork" in classes:
        module = "training.networks"  # stylegan2-ada-pytorch
    else:
        module = "?"
    return PickledSource(module, constructors)


def _signature(function: ast.FunctionDef) -> tuple:
    """Parameter names after `self` and the defaults that are literals."""
    args = function.args
    positional = args.posonlyargs + args.args
    names = tuple(a.arg for a in positional[1:])
    defaults = {}
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    for arg, node in pairs:
        try:
            defaults[arg.arg] = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            pass
    return names, defaults


# ----------------------------------------------------------------------------------------
# The restricted unpickler.

def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, *metadata):
    """A tensor viewing `storage`; its extent is checked first (torch does not check it)."""
    if not isinstance(storage, torch.TypedStorage) or backward_hooks or not _fits(storage, storage_offset, size, stride):
        raise NVlabsPickleError("a tensor in the pickle is not plain data")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())


def _fits(storage, offset, size, stride) -> bool:
    """Whether a view (offset, size, stride) stays inside the storage."""
    numbers = [offset, *size, *stride] if isinstance(size, tuple) and isinstance(stride, tuple) else None
    if not numbers or len(size) != len(stride) or not all(type(n) is int and n >= 0 for n in numbers):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage's deprecation notice
        length = storage.size()
    if 0 in size:
        return offset <= length
    return offset + sum((n - 1) * step for n, step in zip(size, stride)) < length


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise NVlabsPickleError("a parameter in the pickle is not plain data")
    return data


def _load_storage(data):
    """A storage written by torch.save inside the pickle; read as plain tensors only."""
    if not isinstance(data, bytes):
        raise NVlabsPickleError("a tensor storage in the pickle is not plain data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.TypedStorage):
        raise NVlabsPickleError("a tensor storage in the pickle is not plain data")
    return storage


def _numpy_array(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise NVlabsPickleError("a numpy array in the pickle is not plain data")
    return _numpy_reconstruct(np.ndarray, shape, dtype)


# (module, name) -> what the unpickler hands out instead of importing it.
ALLOWED_GLOBALS = {
    # torch tensors and parameters; their storages are torch.save'd bytes, read with weights_only
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    # containers
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): dict,
    # numpy scalars (e.g. weight_gain is an np.float64) and arrays, under numpy 1 and 2
    # names; numpy refuses object scalars and object arrays given as raw bytes
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_array,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_array,
    # the persistent-object hook: _NVlabsUnpickler.persistent_object, which never runs module_src
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): None,
}
TENSORFLOW_NETWORK = ("dnnlib.tflib.network", "Network")


class _NVlabsUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.sources = {}  # module_src -> PickledSource, parsed once per file

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            if (module, name) == TENSORFLOW_NETWORK:
                raise NVlabsPickleError(
                    f"{self.path} is a TensorFlow StyleGAN/StyleGAN2 pickle; cstylegan reads the PyTorch "
                    "pickles of stylegan2-ada-pytorch and stylegan3 only")
            raise NVlabsPickleError(
                f"{self.path} is not a plain NVlabs network pickle: it asks for the global '{module}.{name}', "
                "which could run code, so it was refused and nothing in it was run")
        if module == "torch_utils.persistence":
            return self.persistent_object
        return ALLOWED_GLOBALS[(module, name)]

    def persistent_object(self, meta):
        """Stands in for `_reconstruct_persistent_obj(meta)`: data, and module_src is never run."""
        if not (isinstance(meta, dict) and meta.get("type") == "class" and isinstance(meta.get("class_name"), str)
                and isinstance(meta.get("module_src"), str) and isinstance(meta.get("state"), dict)):
            raise NVlabsPickleError(f"{self.path} holds a persistent object of a kind cstylegan does not know")
        src = meta["module_src"]
        if src not in self.sources:
            self.sources[src] = _parse_source(src)
        state = meta["state"]
        init_args = state.get("_init_args", ())
        init_kwargs = state.get("_init_kwargs", {})
        if not isinstance(init_args, (tuple, list)) or not isinstance(init_kwargs, dict):
            raise NVlabsPickleError(f"{self.path}: {meta['class_name']} has no readable constructor arguments")
        return PersistentObject(meta["class_name"], self.sources[src], tuple(_plain(init_args)),
                                _plain(init_kwargs), _module_tensors(state, meta["class_name"]))


def _module_tensors(state: dict, class_name: str) -> dict:
    """Parameters and persistent buffers of a module's __dict__ and of its sub-modules."""
    tensors = {}
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise NVlabsPickleError(f"{class_name}.{name} in the pickle is not a tensor")
            tensors[name] = value
    for child_name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise NVlabsPickleError(f"the sub-module {class_name}.{child_name} in the pickle is not an NVlabs module")
        tensors.update({f"{child_name}.{key}": value for key, value in child.tensors.items()})
    return tensors


def _plain(value):
    """Constructor arguments as plain Python data (dicts, lists, tuples, numbers, strings)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise NVlabsPickleError(f"a constructor argument in the pickle is a {type(value).__name__}, not plain data")


def read_nvlabs_pickle(path) -> dict:
    """The pickle's top-level dict, networks as `PersistentObject`s; nothing is executed."""
    path = Path(path)
    if not path.is_file():
        raise NVlabsPickleError(f"network file not found: {path}")
    try:
        with open(path, "rb") as file:
            data = _NVlabsUnpickler(file, path).load()
    except NVlabsPickleError as error:
        if str(error).startswith(str(path)):
            raise
        raise NVlabsPickleError(f"{path}: {error}") from None
    except Exception as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise NVlabsPickleError(f"cannot read {path} as an NVlabs network pickle ({first_line})") from None
    if not isinstance(data, dict) or not isinstance(data.get("G_ema", data.get("G")), PersistentObject):
        raise NVlabsPickleError(f"{path} is a pickle but not an NVlabs network pickle (no G_ema or G network in it)")
    return data


# ----------------------------------------------------------------------------------------
# Official constructor arguments -> ours.

# Arguments that change nothing we compute (memory layout, grouped vs shared convolution).
IGNORED_KWARGS = {"class_name", "fp16_channels_last", "channels_last", "fused_modconv_default"}
G_TOP = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
G_SYNTHESIS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
               "resample_filter", "use_noise", "activation", "kernel_size"}
G_MAPPING = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
D_TOP = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
         "num_fp16_res", "conv_clamp", "cmap_dim"}
D_BLOCK = {"activation", "resample_filter", "freeze_layers"}
D_MAPPING = G_MAPPING - {"w_avg_beta"}
D_EPILOGUE = {"mbstd_group_size", "mbstd_num_channels", "activation"}


def _checked(kwargs: dict, known: set, where: str) -> dict:
    kwargs = {key: value for key, value in kwargs.items() if key not in IGNORED_KWARGS}
    for key, value in kwargs.items():
        if key not in known:
            raise NVlabsPickleError(f"{where} was built with {key}={value!r}, which changes the network and "
                                    "which cstylegan's StyleGAN2 does not support")
    return kwargs


def _nested(kwargs: dict, key: str, where: str) -> dict:
    value = kwargs.pop(key, None) or {}
    if not isinstance(value, dict):
        raise NVlabsPickleError(f"{where}: {key} is not a dict")
    return dict(value)


def stylegan2_generator_kwargs(net: PersistentObject) -> dict:
    """Our Generator kwargs. stylegan2-ada-pytorch nests the synthesis arguments in
    `synthesis_kwargs`; the stylegan3 repository passes them flat. Defaults the pickle
    leaves out (they differ between the two: num_fp16_res, conv_clamp, w_avg_beta) are
    read from the pickled source and written out explicitly."""
    where = f"G ({net.qualified_name})"
    kwargs = net.kwargs()
    mapping = _checked(_nested(kwargs, "mapping_kwargs", where), G_MAPPING, where + " mapping")
    synthesis = _nested(kwargs, "synthesis_kwargs", where)
    missing = [key for key in G_TOP if key not in kwargs]
    if missing:
        raise NVlabsPickleError(f"{where} has no {', '.join(missing)} among its constructor arguments")
    top = {key: kwargs.pop(key) for key in G_TOP}
    synthesis = _checked({**synthesis, **kwargs}, G_SYNTHESIS, where)
    for key in ("channel_base", "channel_max", "num_fp16_res"):
        synthesis.setdefault(key, net.default("SynthesisNetwork", key))
    for key in ("architecture", "conv_clamp"):
        synthesis.setdefault(key, net.default("SynthesisBlock", key))
    for key in ("num_layers", "lr_multiplier", "w_avg_beta"):
        mapping.setdefault(key, net.default("MappingNetwork", key))
    return {**top, "mapping_kwargs": mapping, **synthesis}


def stylegan2_discriminator_kwargs(net: PersistentObject) -> dict:
    where = f"D ({net.qualified_name})"
    kwargs = net.kwargs()
    block = _checked(_nested(kwargs, "block_kwargs", where), D_BLOCK, where + " block")
    mapping = _checked(_nested(kwargs, "mapping_kwargs", where), D_MAPPING, where + " mapping")
    epilogue = _checked(_nested(kwargs, "epilogue_kwargs", where), D_EPILOGUE, where + " epilogue")
    top = _checked(kwargs, D_TOP, where)
    for key in ("architecture", "channel_base", "channel_max", "num_fp16_res", "conv_clamp"):
        top.setdefault(key, net.default("Discriminator", key))
    if top.get("c_dim", 0) > 0:
        mapping.setdefault("num_layers", net.default("MappingNetwork", "num_layers"))
    epilogue.setdefault("mbstd_group_size", net.default("DiscriminatorEpilogue", "mbstd_group_size"))
    return {**top, "block_kwargs": block, "mapping_kwargs": mapping, "epilogue_kwargs": epilogue}


G3_SYNTHESIS = {"channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res", "conv_kernel", "filter_size",
                "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta"}
G3_MAPPING = {"num_layers", "lr_multiplier", "w_avg_beta"}


def stylegan3_generator_kwargs(net: PersistentObject) -> dict:
    """Our StyleGAN3 Generator kwargs: the synthesis arguments are passed flat; num_fp16_res,
    whose default differs from ours, is read from the pickled source."""
    where = f"G ({net.qualified_name})"
    kwargs = net.kwargs()
    mapping = _checked(_nested(kwargs, "mapping_kwargs", where), G3_MAPPING, where + " mapping")
    missing = [key for key in G_TOP if key not in kwargs]
    if missing:
        raise NVlabsPickleError(f"{where} has no {', '.join(missing)} among its constructor arguments")
    top = {key: kwargs.pop(key) for key in G_TOP}
    synthesis = _checked(kwargs, G3_SYNTHESIS, where)
    synthesis.setdefault("num_fp16_res", net.default("SynthesisNetwork", "num_fp16_res"))
    return {**top, "mapping_kwargs": mapping, **synthesis}


# Official class -> (our class, its constructor arguments). One line per supported class.
BUILDERS = {
    "training.networks.Generator": (Generator, stylegan2_generator_kwargs),               # stylegan2-ada-pytorch
    "training.networks.Discriminator": (Discriminator, stylegan2_discriminator_kwargs),
    "training.networks_stylegan2.Generator": (Generator, stylegan2_generator_kwargs),     # stylegan3, --cfg stylegan2
    "training.networks_stylegan2.Discriminator": (Discriminator, stylegan2_discriminator_kwargs),
    "training.networks_stylegan3.Generator": (StyleGAN3Generator, stylegan3_generator_kwargs),
}


def _network_kwargs(net: PersistentObject, role: str, path) -> tuple:
    if net.qualified_name not in BUILDERS:
        raise NVlabsPickleError(
            f"{path}: {role} is a '{net.class_name}' from {'an unknown source' if net.source.module == '?' else net.source.module}"
            "; cstylegan reads the StyleGAN2 networks of stylegan2-ada-pytorch and stylegan3")
    cls, make_kwargs = BUILDERS[net.qualified_name]
    try:
        return cls, make_kwargs(net)
    except NVlabsPickleError as error:
        raise NVlabsPickleError(f"{path}: {error}") from None


def _build(cls, kwargs: dict, net: PersistentObject, role: str, path) -> torch.nn.Module:
    try:
        module = cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise NVlabsPickleError(f"{path}: cannot build {role} from its arguments ({error})") from None
    try:
        result = module.load_state_dict(net.tensors, strict=False)
    except RuntimeError as error:
        detail = " ".join(str(error).split())
        raise NVlabsPickleError(f"{path}: the tensors of {role} do not fit cstylegan's network ({detail[:300]})") from None
    missing = [key for key in result.missing_keys if key != "mapping.w_avg_per_class"]
    if missing or result.unexpected_keys:
        names = ", ".join((missing + result.unexpected_keys)[:5])
        raise NVlabsPickleError(f"{path}: the tensors of {role} do not match cstylegan's network "
                                f"({len(missing)} missing, {len(result.unexpected_keys)} unexpected: {names})")
    return module.eval().requires_grad_(False)


def load_nvlabs_pickle(path) -> dict:
    """An NVlabs StyleGAN2 `.pkl` as one of our snapshots (see cstylegan.snapshots.checkpoint).

    Holds G, G_ema and D state dicts (those present; G_ema is G when absent), G_kwargs,
    D_kwargs, class_names ('class0'.. for conditional networks), cur_nimg (0, or from
    `progress`), ada_p (augment_pipe.p, else 0), augment_pipe (its tensors, if present)
    and format. The per-class w_avg, which NVlabs does not track, is estimated from
    CLASS_AVERAGE_SAMPLES z per class. Raises NVlabsPickleError (a CheckpointError).
    """
    path = Path(path)
    data = read_nvlabs_pickle(path)
    networks = {role: data[role] for role in ("G", "G_ema", "D") if isinstance(data.get(role), PersistentObject)}
    networks.setdefault("G_ema", networks.get("G"))
    made = {role: _network_kwargs(net, role, path) for role, net in networks.items()}
    if "G" in made and made["G"][1] != made["G_ema"][1]:
        raise NVlabsPickleError(f"{path}: G and G_ema were built with different arguments")

    snapshot = {"format": FORMAT, "G_kwargs": made["G_ema"][1], "G_family": GENERATOR_FAMILY[made["G_ema"][0]]}
    for role, net in networks.items():
        cls, kwargs = made[role]
        module = _build(cls, kwargs, net, role, path)
        if cls in GENERATOR_FAMILY and module.c_dim > 0:
            module.mapping.estimate_class_averages(CLASS_AVERAGE_SAMPLES, seed=CLASS_AVERAGE_SEED)
        snapshot[role] = module.state_dict()
        if cls is Discriminator:
            snapshot["D_kwargs"] = kwargs
    c_dim = snapshot["G_kwargs"]["c_dim"]
    snapshot["class_names"] = [f"class{i}" for i in range(c_dim)]
    snapshot["cur_nimg"] = _cur_nimg(data.get("progress"))
    augment = data.get("augment_pipe")
    snapshot["ada_p"] = 0.0
    if isinstance(augment, PersistentObject):
        snapshot["augment_pipe"] = dict(augment.tensors)
        p = augment.tensors.get("p")
        snapshot["ada_p"] = float(p) if p is not None and p.numel() == 1 and math.isfinite(float(p)) else 0.0
    return snapshot


def _cur_nimg(progress) -> int:
    """Images shown so far, where a fork stored them (`progress['cur_nimg']`); else 0."""
    value = progress.get("cur_nimg") if isinstance(progress, dict) else None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else 0
