//! Classifying what a pickle imports: **dangerous**, **safe** (a vetted allowlist of what
//! real model files use), or **unknown** (everything else — denied unless the user allows it).
//!
//! Names are normalised first the way CPython's unpickler does: protocol-2 (Python 2) module
//! and name remapping (`__builtin__` → `builtins`, `copy_reg` → `copyreg`, …), and dotted
//! names resolved as attribute chains (`os.path` + `join`, or `builtins` + `getattr.__self__`),
//! so an attribute walk cannot dress a dangerous target as a safe module.

/// How an import is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// On the allowlist.
    Safe,
    /// Neither allowlisted nor known to be dangerous.
    Unknown,
    /// Known to run code, touch the system, or load further pickles.
    Dangerous,
}

/// Python 2 module names that the unpickler maps to Python 3 ones (`_compat_pickle`).
const MODULE_MAP: &[(&str, &str)] = &[
    ("__builtin__", "builtins"),
    ("copy_reg", "copyreg"),
    ("Queue", "queue"),
    ("SocketServer", "socketserver"),
    ("ConfigParser", "configparser"),
    ("repr", "reprlib"),
    ("cPickle", "pickle"),
    ("_elementtree", "xml.etree.ElementTree"),
    ("dbhash", "dbm.bsd"),
    ("dumbdbm", "dbm.dumb"),
    ("dbm", "dbm.ndbm"),
    ("gdbm", "dbm.gnu"),
    ("xmlrpclib", "xmlrpc.client"),
    ("httplib", "http.client"),
    ("HTMLParser", "html.parser"),
    ("Cookie", "http.cookies"),
    ("cookielib", "http.cookiejar"),
    ("BaseHTTPServer", "http.server"),
    ("SimpleHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("commands", "subprocess"),
    ("urlparse", "urllib.parse"),
    ("robotparser", "urllib.robotparser"),
    ("urllib2", "urllib.request"),
    ("anydbm", "dbm"),
    ("_abcoll", "collections.abc"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("UserString", "collections"),
    ("whichdb", "dbm"),
    ("StringIO", "io"),
    ("cStringIO", "io"),
    ("exceptions", "builtins"),
    ("thread", "_thread"),
    ("multiprocessing.forking", "multiprocessing.popen_fork"),
];

/// `(module, name)` pairs that map to another module and name (`_compat_pickle.NAME_MAPPING`).
const NAME_MAP: &[(&str, &str, &str, &str)] = &[
    ("__builtin__", "xrange", "builtins", "range"),
    ("__builtin__", "reduce", "functools", "reduce"),
    ("__builtin__", "intern", "sys", "intern"),
    ("__builtin__", "unichr", "builtins", "chr"),
    ("__builtin__", "unicode", "builtins", "str"),
    ("__builtin__", "long", "builtins", "int"),
    ("__builtin__", "basestring", "builtins", "str"),
    ("__builtin__", "execfile", "builtins", "exec"),
    ("itertools", "izip", "builtins", "zip"),
    ("itertools", "imap", "builtins", "map"),
    ("itertools", "ifilter", "builtins", "filter"),
    ("os", "getcwdu", "os", "getcwd"),
    ("urllib", "urlopen", "urllib.request", "urlopen"),
    ("urllib", "urlretrieve", "urllib.request", "urlretrieve"),
];

/// Modules where anything is dangerous (matched on the whole top-level dotted prefix).
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "sys",
    "socket",
    "shutil",
    "importlib",
    "code",
    "codeop",
    "pdb",
    "bdb",
    "pip",
    "webbrowser",
    "ctypes",
    "runpy",
    "pty",
    "pydoc",
    "timeit",
    "cProfile",
    "profile",
    "asyncio",
    "marshal",
    "types",
    "_pickle",
    "pickle",
    "dill",
    "cloudpickle",
    "shelve",
    "multiprocessing",
    "_thread",
    "threading",
    "signal",
    "socketserver",
    "http",
    "urllib",
    "ftplib",
    "smtplib",
    "telnetlib",
    "xmlrpc",
    "requests",
    "httpx",
    "tempfile",
    "glob",
    "pathlib",
    "io",
    "_io",
    "zipimport",
    "pkgutil",
    "site",
    "sitecustomize",
    "ensurepip",
    "venv",
    "distutils",
    "setuptools",
    "trace",
    "doctest",
    "idlelib",
    "lib2to3",
    "cgi",
    "cgitb",
    "_osx_support",
    "_aix_support",
    "_posixsubprocess",
    "resource",
    "fcntl",
    "mmap",
    "gc",
    "inspect",
    "builtins.__import__",
    "operator",
    "functools",
    "linecache",
    "tokenize",
    "compileall",
    "py_compile",
    "zipfile",
    "tarfile",
    "sqlite3",
    "dbm",
    "platform",
    "uuid._popen",
    "ssl",
    "select",
    "selectors",
    "crypt",
    "getpass",
    "sysconfig",
    "jinja2",
    "mako",
    "yaml",
    "joblib.load",
    "torch.load",
    "torch.hub",
    "torch.jit",
    "torch.package",
    "torch.serialization",
    "torch._inductor",
    "torch.utils.cpp_extension",
    "torch.fx",
    "torch.storage._load_from_bytes",
    "numpy.load",
    "numpy.loads",
    "numpy.fromfile",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.lib.npyio",
    "numpy.ctypeslib",
    "pandas.read_pickle",
    "pandas.io",
    "keras.models.load_model",
    "tensorflow",
    "onnx.load",
    "transformers",
    "huggingface_hub",
];

/// Individual builtins that are dangerous (the rest of `builtins` is unknown unless allowlisted).
const DANGEROUS_BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "open",
    "getattr",
    "setattr",
    "delattr",
    "__import__",
    "breakpoint",
    "input",
    "globals",
    "locals",
    "vars",
    "dir",
    "help",
    "memoryview",
    "exit",
    "quit",
    "apply",
    "execfile",
    "file",
    "reload",
    "super",
    "type",
    "object.__subclasses__",
    "classmethod",
    "staticmethod",
    "property",
    "__loader__",
    "__spec__",
    "__build_class__",
];

/// Exactly these are safe.
const SAFE: &[&str] = &[
    // Plain containers and scalars CPython itself writes.
    "builtins.set",
    "builtins.frozenset",
    "builtins.complex",
    "builtins.slice",
    "builtins.range",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.str",
    "builtins.object",
    "_codecs.encode",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    // PyTorch tensors, parameters and storages.
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_nested_tensor",
    "torch._tensor._rebuild_from_type_v2",
    "torch._tensor._rebuild_from_type",
    "torch.nn.parameter.Parameter",
    "torch.Size",
    "torch.device",
    "torch.Tensor",
    "torch.serialization._get_layout",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QInt8Storage",
    "torch.QUInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
    "torch.UntypedStorage",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.float32",
    "torch.float16",
    "torch.bfloat16",
    "torch.float64",
    "torch.int64",
    "torch.int32",
    "torch.int16",
    "torch.int8",
    "torch.uint8",
    "torch.bool",
    "torch.strided",
    "torch.sparse_coo",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    // Every other dtype torch can save (`getattr(torch, name)` on load: a constant, no call).
    "torch.float8_e4m3fn",
    "torch.float8_e5m2",
    "torch.float8_e4m3fnuz",
    "torch.float8_e5m2fnuz",
    "torch.float8_e8m0fnu",
    "torch.float4_e2m1fn_x2",
    "torch.complex32",
    "torch.complex64",
    "torch.complex128",
    "torch.uint16",
    "torch.uint32",
    "torch.uint64",
    "torch.qint8",
    "torch.quint8",
    "torch.qint32",
    "torch.quint4x2",
    "torch.quint2x4",
    "torch.bits8",
    "torch.bits16",
    "torch.sparse_csr",
    "torch.sparse_csc",
    "torch.sparse_bsr",
    "torch.sparse_bsc",
    "torch.per_channel_affine_float_qparams",
    "torch.channels_last",
    "torch.contiguous_format",
    "torch.preserve_format",
    // TorchScript's list and tensor builders (`torch.jit._pickle`): they turn the lists and
    // ids a TorchScript pickle holds back into values and run nothing. The code a TorchScript
    // archive carries is reported on its own (`torchscript-code`).
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_tensor_from_id",
    "torch.jit._pickle.restore_type_tag",
    // NumPy arrays, dtypes and scalars.
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random.bit_generator.SeedSequence",
    // joblib's array wrappers.
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "joblib.numpy_pickle.NDArrayWrapper",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
    "joblib.numpy_pickle_compat.ZNDArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    // Tree ensembles and their boosters.
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    "xgboost.core.Booster",
    "lightgbm.basic.Booster",
];

/// Packages whose *classes* (CamelCase final component) are allowlisted: estimators, trees,
/// transformers. Functions in them stay unknown.
const SAFE_CLASS_PACKAGES: &[&str] = &[
    "sklearn.",
    "xgboost.sklearn.",
    "lightgbm.sklearn.",
    "numpy.dtypes.",
];

/// `(module, name)` as the unpickler will import it.
#[must_use]
pub fn normalise(module: &str, name: &str) -> (String, String) {
    if let Some((_, _, m, n)) = NAME_MAP
        .iter()
        .find(|(m, n, _, _)| *m == module && *n == name)
    {
        return ((*m).to_owned(), (*n).to_owned());
    }
    if let Some((_, to)) = MODULE_MAP.iter().find(|(from, _)| *from == module) {
        return ((*to).to_owned(), name.to_owned());
    }
    (module.to_owned(), name.to_owned())
}

fn prefix_matches(full: &str, entry: &str) -> bool {
    full == entry
        || full
            .strip_prefix(entry)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Classifies a (normalised) import. `allow` holds user-allowed `module.name` entries (an entry
/// ending in `.*` allows a whole module).
#[must_use]
pub fn classify(module: &str, name: &str, allow: &[String]) -> Class {
    let full = format!("{module}.{name}");
    // Attribute chains into interpreter internals are dangerous whatever the module.
    if name
        .split('.')
        .any(|part| part.starts_with("__") && part.ends_with("__") && part.len() > 4)
        && !SAFE.contains(&full.as_str())
    {
        return Class::Dangerous;
    }
    if module == "builtins" {
        let first = name.split('.').next().unwrap_or(name);
        if DANGEROUS_BUILTINS.contains(&first) || DANGEROUS_BUILTINS.contains(&name) {
            return Class::Dangerous;
        }
    }
    // The vetted list names exact functions, some inside modules that are otherwise
    // dangerous (`torch.jit._pickle.build_intlist` in `torch.jit`): an exact entry wins.
    if SAFE.contains(&full.as_str()) {
        return Class::Safe;
    }
    if DANGEROUS_MODULES.iter().any(|m| prefix_matches(&full, m)) {
        return Class::Dangerous;
    }
    let last = full.rsplit('.').next().unwrap_or_default();
    if !name.contains('.')
        && last.chars().next().is_some_and(char::is_uppercase)
        && SAFE_CLASS_PACKAGES.iter().any(|p| full.starts_with(p))
    {
        return Class::Safe;
    }
    if allow.iter().any(|a| {
        a == &full
            || a.strip_suffix(".*")
                .is_some_and(|m| prefix_matches(module, m))
    }) {
        return Class::Safe;
    }
    Class::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(module: &str, name: &str) -> Class {
        let (m, n) = normalise(module, name);
        classify(&m, &n, &[])
    }

    #[test]
    fn classifications() {
        for (m, n) in [
            ("os", "system"),
            ("posix", "system"),
            ("nt", "system"),
            ("subprocess", "Popen"),
            ("builtins", "eval"),
            ("__builtin__", "eval"),
            ("__builtin__", "execfile"),
            ("builtins", "getattr"),
            ("runpy", "run_path"),
            ("operator", "attrgetter"),
            ("functools", "partial"),
            ("torch", "load"),
            ("numpy", "load"),
            ("numpy.testing._private.utils", "runstring"),
            ("pydoc", "pipepager"),
            ("_pickle", "loads"),
            ("commands", "getoutput"),
            ("os.path", "join"),
            ("builtins", "getattr.__self__"),
            ("collections", "OrderedDict.__init__.__globals__"),
            ("torch.storage", "_load_from_bytes"),
            ("asyncio.unix_events", "_UnixSubprocessTransport"),
            ("__builtin__", "reduce"),
        ] {
            assert_eq!(c(m, n), Class::Dangerous, "{m}.{n}");
        }
        for (m, n) in [
            ("torch._utils", "_rebuild_tensor_v2"),
            ("collections", "OrderedDict"),
            ("__builtin__", "set"),
            ("copy_reg", "_reconstructor"),
            ("_codecs", "encode"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("sklearn.ensemble._forest", "RandomForestClassifier"),
            ("sklearn.tree._tree", "Tree"),
            ("torch", "FloatStorage"),
            ("torch", "_utils._rebuild_tensor_v2"),
        ] {
            assert_eq!(c(m, n), Class::Safe, "{m}.{n}");
        }
        for (m, n) in [
            ("mypkg", "Thing"),
            ("sklearn.utils", "some_function"),
            ("__main__", "Model"),
            ("builtins", "print"),
        ] {
            assert_eq!(c(m, n), Class::Unknown, "{m}.{n}");
        }
        assert_eq!(
            classify("mypkg", "Thing", &["mypkg.Thing".into()]),
            Class::Safe
        );
        assert_eq!(
            classify("mypkg.sub", "Thing", &["mypkg.*".into()]),
            Class::Safe
        );
        assert_eq!(
            classify("os", "system", &["os.system".into()]),
            Class::Dangerous
        );
    }
}
