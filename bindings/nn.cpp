// bindings/nn.cpp: the bulk builders, losses and optimizers behind micrograd_cpp.nn (float64).
#include <algorithm>
#include <memory>
#include <unordered_map>

#include "common.hpp"

namespace mgpy {
namespace {

using namespace nb::literals;
using V = micrograd::Value<double>;

// A list (or iterable) of numbers.
std::vector<double> reals(nb::handle seq, const std::string& what) {
    nb::list items = as_list(seq, what);
    std::vector<double> out;
    out.reserve(nb::len(items));
    for (nb::handle h : items) out.push_back(real_or_throw<double>(h, what + " items"));
    return out;
}

std::vector<std::size_t> class_indices(nb::handle seq) {
    nb::list items = as_list(seq, "classes");
    std::vector<std::size_t> out;
    out.reserve(nb::len(items));
    for (nb::handle h : items) {
        if (!is_integer(h))
            throw nb::type_error(("classes must hold ints, not '" + py_type_name(h) + "'").c_str());
        const Py_ssize_t c = PyNumber_AsSsize_t(h.ptr(), nullptr);  // clamps huge ints
        if (c == -1 && PyErr_Occurred()) throw nb::python_error();
        if (c < 0)
            throw nb::value_error(("classes must be >= 0, got " + std::to_string(c)).c_str());
        out.push_back(static_cast<std::size_t>(c));  // too large: "out of range" in the loss
    }
    return out;
}

// Attribute names read for every neuron of every forward pass, interned once.
struct AttrNames {
    PyObject* w = PyUnicode_InternFromString("w");
    PyObject* b = PyUnicode_InternFromString("b");
    PyObject* nonlin = PyUnicode_InternFromString("nonlin");
    PyObject* neurons = PyUnicode_InternFromString("neurons");
};

const AttrNames& attr_names() {
    static const auto* names = new AttrNames();  // never freed, like the Python strings
    return *names;
}

nb::object get(nb::handle obj, PyObject* name) {
    PyObject* r = PyObject_GetAttr(obj.ptr(), name);
    if (r == nullptr) throw nb::python_error();
    return nb::steal(r);
}

// The value inside h, borrowed: valid while h lives (TypeError naming `what` otherwise).
const V& single_value(nb::handle h, const char* what) {
    if (Py_TYPE(h.ptr()) != py_type<double>)
        throw nb::type_error(
            (std::string(what) + " must be a Value, not '" + py_type_name(h) + "'").c_str());
    return nb::inst_ptr<PyValue<double>>(h)->v;
}

using Operands = std::vector<micrograd::Operand<double>>;

// What Neuron.__call__ reads from a Python Neuron: its w, b and bool(nonlin).
struct NeuronAttrs {
    nb::object w, b, nonlin;
    bool relu;
};

NeuronAttrs read_neuron(nb::handle neuron) {
    const AttrNames& names = attr_names();
    NeuronAttrs out{get(neuron, names.w), get(neuron, names.b), get(neuron, names.nonlin), false};
    const int relu = PyObject_IsTrue(out.nonlin.ptr());
    if (relu < 0) throw nb::python_error();
    out.relu = relu != 0;
    return out;
}

void check_inputs(std::size_t weights, std::size_t inputs) {
    if (weights != inputs)
        throw nb::value_error(("Neuron(" + std::to_string(weights) + ") got " +
                               std::to_string(inputs) + " inputs; it needs exactly " +
                               std::to_string(weights))
                                  .c_str());
}

// Neuron.__call__ for the Python Neuron `neuron`. `weights` is the caller's scratch space.
// Everything that may run Python code (attribute lookups, bool()) happens before the
// weights are borrowed and used: no one can drop them between. A number among the weights
// or as the bias computes as in micrograd: a new constant leaf at each call.
V apply_neuron(nb::handle neuron, const Operands& x, std::vector<const V*>& weights) {
    const NeuronAttrs attrs = read_neuron(neuron);
    nb::list w = borrowed_list(attrs.w, "Neuron.w");
    check_inputs(nb::len(w), x.size());
    weights.clear();
    bool all_values = true;
    for (nb::handle h : w) all_values &= Py_TYPE(h.ptr()) == py_type<double>;
    std::vector<V> constants;  // the numbers' leaves (reserved: `weights` points into it)
    nb::list items;            // with numbers: a copy, as converting them runs Python code
    if (all_values) {
        for (nb::handle h : w) weights.push_back(&nb::inst_ptr<PyValue<double>>(h)->v);
    } else {
        items = as_list(w, "Neuron.w");
        const Operands ws = operands<double>(items, "Neuron.w");  // `items` owns the values
        constants.reserve(ws.size());
        for (const auto& wi : ws)
            weights.push_back(wi.value ? wi.value : &constants.emplace_back(wi.number));
    }
    std::optional<V> bias;
    if (Py_TYPE(attrs.b.ptr()) != py_type<double>) {
        auto number = as_real(attrs.b);
        if (!number)
            throw nb::type_error(
                ("Neuron.b must be a Value or a number, not '" + py_type_name(attrs.b) + "'")
                    .c_str());
        bias.emplace(*number);
    }
    return micrograd::neuron(weights.data(), bias ? *bias : single_value(attrs.b, "Neuron.b"),
                             x.data(), x.size(), attrs.relu);
}

// nn.Neuron and nn.Layer, and their own __call__, registered by micrograd_cpp.nn when it
// loads (register_nn; held for good, as the module is). Layers call their neurons, and
// MLPs their layers, as micrograd's do: through Python when the class has another
// __call__ (a subclass overriding it), else in C++.
struct NnClasses {
    PyObject* neuron = nullptr;
    PyObject* neuron_call = nullptr;
    PyObject* layer = nullptr;
    PyObject* layer_call = nullptr;
};

NnClasses& nn_classes() {
    static auto* classes = new NnClasses();
    return *classes;
}

// cls.__call__: what Python's obj(...) runs for an object of class cls.
nb::object call_of(nb::handle cls) {
    static PyObject* name = PyUnicode_InternFromString("__call__");
    return get(cls, name);
}

// Whether obj(...) runs `call`.
bool calls(nb::handle obj, PyObject* call) {
    return call != nullptr && call_of(obj.type()).ptr() == call;
}

// The list a Python __call__ gets for these operands: the values, and the numbers.
nb::list python_inputs(const Operands& x) {
    nb::list out;
    for (const auto& xi : x) out.append(xi.value ? wrap<double>(*xi.value) : nb::float_(xi.number));
    return out;
}

// Neuron.__call__ for a neuron of a layer.
V call_neuron(nb::handle neuron, const Operands& x, std::vector<const V*>& weights) {
    if (calls(neuron, nn_classes().neuron_call)) return apply_neuron(neuron, x, weights);
    nb::object out = neuron(python_inputs(x));
    return single_value(out, "a Neuron's __call__ result");
}

// Layer.__call__ for a list of Python Neurons, as C++ values.
std::vector<V> apply_layer(nb::handle neurons, const Operands& x) {
    std::vector<const V*> weights;
    std::vector<V> out;
    for (nb::handle n : as_list(neurons, "Layer.neurons"))
        out.push_back(call_neuron(n, x, weights));
    return out;
}

// Layer.__call__ for a layer of an MLP (a bare Value or a list of them).
std::vector<V> call_layer(nb::handle layer, const Operands& x) {
    if (calls(layer, nn_classes().layer_call))
        return apply_layer(get(layer, attr_names().neurons), x);
    nb::object out = layer(python_inputs(x));
    if (Py_TYPE(out.ptr()) == py_type<double>) return {single_value(out, "")};
    return values<double>(out, "a Layer's __call__ result");
}

Operands operands_of(const std::vector<V>& vs) {
    Operands out;
    out.reserve(vs.size());
    for (const V& v : vs) out.push_back({&v, 0.0});
    return out;
}

nb::list wrap_all(std::vector<V> vs) {
    nb::list out;
    for (V& v : vs) out.append(wrap<double>(std::move(v)));
    return out;
}

// MLP.__call__'s result: a bare Value for one output, as micrograd's; with no layers, x
// itself (micrograd's loop over the layers leaves it as it was).
nb::object mlp_result(std::vector<V> out, std::size_t layers, nb::handle x) {
    if (layers == 0) return nb::borrow(x);
    if (out.size() == 1) return wrap<double>(std::move(out[0]));
    return wrap_all(std::move(out));
}

// MLP.__call__ reading every layer's and neuron's attributes; `in` holds x's items.
nb::object mlp_forward(nb::handle layers, nb::handle x, Operands in) {
    std::vector<V> out;
    const nb::list all = as_list(layers, "MLP.layers");
    for (nb::handle layer : all) {
        out = call_layer(layer, in);
        in = operands_of(out);
    }
    return mlp_result(std::move(out), nb::len(all), x);
}

// Bumped whenever an attribute of any nn.Module is assigned or deleted (model_changed(),
// called by Module.__setattr__ and __delattr__): every ForwardPlan is then stale.
std::uint64_t model_version = 1;

// MLP.__call__ without reading any attribute: what mlp_forward reads (the layers' neurons,
// and each neuron's w, b and nonlin), kept between calls and checked before each one. It
// is used while no nn.Module attribute has been assigned since it was made and every list
// it read (MLP.layers, each Layer.neurons, each Neuron.w) holds the same objects as then.
// It keeps references to all of them, so "the same object" cannot be a new object at a
// freed address. Only for models made of nn.Layer and nn.Neuron exactly (a subclass may
// compute its attributes or have its own __call__) whose classes still have their own
// __call__, with Value weights and a bool nonlin: any other model takes mlp_forward's
// path, which reads every attribute at every call.
class ForwardPlan {
public:
    nb::object operator()(nb::handle layers, nb::handle x) {
        nb::list xs = as_list(x, "MLP input");  // may run Python code: before the check
        Operands in = operands<double>(xs, "MLP input");
        if (!valid(layers) && !build(layers)) return mlp_forward(layers, x, std::move(in));
        std::vector<V> out;
        for (const std::vector<Planned>& layer : layers_) {
            for (const Planned& n : layer) check_inputs(n.w.size(), in.size());
            std::vector<V> next;
            next.reserve(layer.size());
            // One row of inputs for the whole layer, unless numbers must become new leaves
            // for each neuron (micrograd's Value(xi)).
            if (std::all_of(in.begin(), in.end(), [](const auto& x) { return x.value; })) {
                const micrograd::NodeRow<double> shared(in.data(), in.size());
                for (const Planned& n : layer)
                    next.push_back(micrograd::neuron(n.w, *n.b, shared, n.relu));
            } else {
                for (const Planned& n : layer)
                    next.push_back(micrograd::neuron(
                        n.w, *n.b, micrograd::NodeRow<double>(in.data(), in.size()), n.relu));
            }
            out = std::move(next);
            in = operands_of(out);
        }
        return mlp_result(std::move(out), layers_.size(), x);
    }

private:
    struct Planned {
        micrograd::NodeRow<double> w;
        const V* b;  // in `biases_`
        bool relu;
    };
    struct Seen {  // a list that was read, and its items then (`keep_` holds them)
        nb::object list;
        std::vector<PyObject*> items;
    };

    Seen& snapshot(nb::handle list) {
        Seen& seen = seen_.emplace_back(Seen{nb::borrow(list), {}});
        const Py_ssize_t n = list_size(list.ptr());
        seen.items.reserve(static_cast<std::size_t>(n));
        for (Py_ssize_t i = 0; i < n; ++i) {
            keep_.push_back(nb::borrow(list_item(list.ptr(), i)));
            seen.items.push_back(keep_.back().ptr());
        }
        return seen;
    }

    bool valid(nb::handle layers) const {
        if (version_ != model_version || seen_.empty() || seen_[0].list.ptr() != layers.ptr() ||
            !own_calls())
            return false;
        for (const Seen& s : seen_)
            if (!list_holds(s.list.ptr(), s.items)) return false;
        return true;
    }

    // nn.Neuron and nn.Layer have their own __call__ (not one assigned to the class since).
    static bool own_calls() {
        const NnClasses& classes = nn_classes();
        return classes.neuron != nullptr && call_of(classes.neuron).ptr() == classes.neuron_call &&
               call_of(classes.layer).ptr() == classes.layer_call;
    }

    // Reads the model; false when it is not one this plan can stand for.
    bool build(nb::handle layers) {
        version_ = 0;
        seen_.clear();
        keep_.clear();
        layers_.clear();
        const std::uint64_t version = model_version;
        const NnClasses& classes = nn_classes();
        if (!PyList_CheckExact(layers.ptr()) || !own_calls()) return false;
        const std::vector<PyObject*> layer_objects = snapshot(layers).items;
        for (PyObject* layer : layer_objects) {
            if (reinterpret_cast<PyObject*>(Py_TYPE(layer)) != classes.layer) return false;
            nb::object neurons = get(layer, attr_names().neurons);
            if (!PyList_CheckExact(neurons.ptr())) return false;
            const std::vector<PyObject*> neuron_objects = snapshot(neurons).items;
            std::vector<Planned>& planned = layers_.emplace_back();
            for (PyObject* neuron : neuron_objects) {
                if (reinterpret_cast<PyObject*>(Py_TYPE(neuron)) != classes.neuron) return false;
                const NeuronAttrs attrs = read_neuron(neuron);
                if (!PyList_CheckExact(attrs.w.ptr()) || !PyBool_Check(attrs.nonlin.ptr()) ||
                    Py_TYPE(attrs.b.ptr()) != py_type<double>)
                    return false;
                std::vector<const V*> weights;
                for (PyObject* w : snapshot(attrs.w).items) {
                    if (Py_TYPE(w) != py_type<double>) return false;
                    weights.push_back(&nb::inst_ptr<PyValue<double>>(w)->v);
                }
                planned.push_back({micrograd::NodeRow<double>(weights.data(), weights.size()),
                                   &nb::inst_ptr<PyValue<double>>(attrs.b)->v, attrs.relu});
                keep_.push_back(attrs.b);
            }
        }
        version_ = version;
        return true;
    }

    std::uint64_t version_ = 0;     // model_version when built; 0: nothing built
    std::vector<Seen> seen_;        // MLP.layers first
    std::vector<nb::object> keep_;  // every object read
    std::vector<std::vector<Planned>> layers_;
};

// The plan of each live MLP, by object: an MLP's entry goes when it dies (the callback
// of a weak reference to it, which the entry holds).
struct PlanEntry {
    nb::object weakref;
    ForwardPlan plan;
};

std::unordered_map<PyObject*, std::unique_ptr<PlanEntry>>& plans() {
    static auto* table = new std::unordered_map<PyObject*, std::unique_ptr<PlanEntry>>();
    return *table;  // never destroyed, like the arenas
}

// MLP.__call__: the layers of `mlp` in turn on x, through its plan.
nb::object mlp_call(nb::handle mlp, nb::handle x) {
    static PyObject* layers = PyUnicode_InternFromString("layers");
    auto& table = plans();
    auto it = table.find(mlp.ptr());
    if (it == table.end()) {
        PyObject* key = mlp.ptr();
        nb::object forget = nb::cpp_function([key](nb::handle) { plans().erase(key); });
        PyObject* ref = PyWeakref_NewRef(key, forget.ptr());
        if (ref == nullptr) {  // not weakly referenceable: no plan kept
            PyErr_Clear();
            return ForwardPlan()(get(mlp, layers), x);
        }
        it = table.emplace(key, std::make_unique<PlanEntry>(PlanEntry{nb::steal(ref), {}})).first;
    }
    return it->second->plan(get(mlp, layers), x);
}

// Optimizer pickling: __reduce__ gives (class, constructor arguments, state), where the
// arguments are the parameters (the Value objects themselves, so that pickling or
// deep-copying a model with its optimizer keeps the optimizer on that model's parameters)
// and the hyperparameters, and the state is plain data: (FORMAT, VERSION, buffers..., steps).
constexpr long OPTIMIZER_VERSION = 1;

nb::list floats(const std::vector<double>& xs) {
    nb::list out;
    for (double x : xs) out.append(nb::float_(x));
    return out;
}

nb::list objects(const std::vector<V>& params) {
    nb::list out;
    for (const V& p : params) out.append(wrap<double>(p));
    return out;
}

// Checks the state's tag, version and size, then runs restore(state); anything malformed
// is a ValueError, and the optimizer is unchanged.
template <class Restore>
void set_optimizer_state(nb::handle state, const char* name, std::size_t size, Restore restore) {
    const std::string what = std::string("cannot unpickle this ") + name + ": ";
    const std::string tag = std::string("micrograd_cpp.") + name;
    if (!nb::isinstance<nb::tuple>(state) || nb::len(state) != size ||
        !nb::isinstance<nb::str>(state[0]) || nb::cast<std::string>(state[0]) != tag)
        throw nb::value_error((what + "its state is not a micrograd_cpp " + name + "'s").c_str());
    if (!PyLong_CheckExact(state[1].ptr()) || nb::cast<long>(state[1]) != OPTIMIZER_VERSION)
        throw nb::value_error((what + "it was written in format version " +
                               nb::cast<std::string>(nb::repr(state[1])) +
                               "; this micrograd_cpp reads version " +
                               std::to_string(OPTIMIZER_VERSION))
                                  .c_str());
    nb::tuple s = nb::borrow<nb::tuple>(state);
    try {
        if (!PyLong_CheckExact(s[size - 1].ptr()))
            throw std::invalid_argument("the step count is not an int");
        const long steps = PyLong_AsLong(s[size - 1].ptr());
        if (steps == -1 && PyErr_Occurred()) throw nb::python_error();
        restore(s, steps);
    } catch (const nb::builtin_exception& e) {
        throw nb::value_error((what + e.what()).c_str());
    } catch (const std::invalid_argument& e) {
        throw nb::value_error((what + e.what()).c_str());
    }
}

}  // namespace

void bind_nn(nb::module_& m) {
    m.def(
        "neuron_forward",
        [](nb::handle neuron, nb::handle x) {
            nb::list xs = as_list(x, "Neuron input");
            std::vector<const V*> weights;
            return wrap<double>(
                apply_neuron(neuron, operands<double>(xs, "Neuron input"), weights));
        },
        "neuron"_a, "x"_a,
        nb::sig("def neuron_forward(neuron: object, x: collections.abc.Iterable[Value | "
                "typing.SupportsFloat]) "
                "-> Value"),
        "Neuron.__call__ in one call: sum((wi*xi ...), b), relu'd if neuron.nonlin.");
    m.def(
        "layer_forward",
        [](nb::handle neurons, nb::handle x) {
            nb::list xs = as_list(x, "Layer input");
            return wrap_all(apply_layer(neurons, operands<double>(xs, "Layer input")));
        },
        "neurons"_a, "x"_a,
        nb::sig("def layer_forward(neurons: collections.abc.Iterable[object], "
                "x: collections.abc.Iterable[Value | typing.SupportsFloat]) -> list[Value]"),
        "Layer.__call__ in one call: every neuron on the same inputs.");
    m.def("mlp_forward", &mlp_call, "mlp"_a, "x"_a,
          nb::sig("def mlp_forward(mlp: object, x: collections.abc.Iterable[Value | "
                  "typing.SupportsFloat]) -> Value | list[Value]"),
          "MLP.__call__ in one call: mlp.layers in turn on x (one Value, or a list for\n"
          "several outputs; x itself when there are no layers, as micrograd). What it reads\n"
          "from the model is kept for the next call while the model's structure stays the\n"
          "same.");
    m.def(
        "register_nn",
        [](nb::type_object neuron, nb::type_object layer) {
            nn_classes() = {neuron.ptr(), call_of(neuron).release().ptr(), layer.ptr(),
                            call_of(layer).release().ptr()};
            neuron.release(), layer.release();
            ++model_version;
        },
        "neuron"_a, "layer"_a,
        "Called by micrograd_cpp.nn when it loads: its Neuron and Layer classes.");
    m.def(
        "model_changed", [] { ++model_version; },
        "Called when a module's attribute changes: every ForwardPlan reads the model again.");
    m.def(
        "zero_grad",
        [](nb::handle params) { micrograd::zero_grad(values<double>(params, "parameters")); },
        "params"_a, nb::sig("def zero_grad(params: collections.abc.Iterable[Value]) -> None"),
        "Set the grad of every value in params to 0.");

    m.def(
        "hinge_loss",
        [](nb::handle scores, nb::handle labels) {
            return wrap<double>(
                micrograd::hinge_loss(values<double>(scores, "scores"), reals(labels, "labels")));
        },
        "scores"_a, "labels"_a,
        nb::sig("def hinge_loss(scores: collections.abc.Iterable[Value], "
                "labels: collections.abc.Iterable[typing.SupportsFloat]) -> Value"),
        "Mean of relu(1 - y*s) over the batch (labels y in {-1, 1}).");
    m.def(
        "mse_loss",
        [](nb::handle predictions, nb::handle targets) {
            nb::list ts = as_list(targets, "targets");
            return wrap<double>(micrograd::mse_loss(values<double>(predictions, "predictions"),
                                                    operands<double>(ts, "targets")));
        },
        "predictions"_a, "targets"_a,
        nb::sig("def mse_loss(predictions: collections.abc.Iterable[Value], "
                "targets: collections.abc.Iterable[Value | typing.SupportsFloat]) -> Value"),
        "Mean of (p - y)**2 over the batch.");
    m.def(
        "binary_cross_entropy_with_logits",
        [](nb::handle logits, nb::handle targets) {
            return wrap<double>(micrograd::binary_cross_entropy_with_logits(
                values<double>(logits, "logits"), reals(targets, "targets")));
        },
        "logits"_a, "targets"_a,
        nb::sig("def binary_cross_entropy_with_logits(logits: collections.abc.Iterable[Value], "
                "targets: collections.abc.Iterable[typing.SupportsFloat]) -> Value"),
        "Mean of softplus(x) - x*y over the batch (targets y in [0, 1]).");
    m.def(
        "cross_entropy_loss",
        [](nb::handle scores, nb::handle classes) {
            std::vector<std::vector<V>> rows;
            for (nb::handle row : as_list(scores, "scores"))
                rows.push_back(values<double>(row, "scores rows"));
            return wrap<double>(micrograd::cross_entropy_loss(rows, class_indices(classes)));
        },
        "scores"_a, "classes"_a,
        nb::sig("def cross_entropy_loss(scores: collections.abc.Iterable["
                "collections.abc.Iterable[Value]], "
                "classes: collections.abc.Iterable[typing.SupportsIndex]) -> Value"),
        "Mean softmax cross-entropy of rows of class scores.");
    m.def(
        "l2_penalty",
        [](nb::handle params, double alpha) {
            return wrap<double>(micrograd::l2_penalty(values<double>(params, "parameters"), alpha));
        },
        "params"_a, "alpha"_a,
        nb::sig("def l2_penalty(params: collections.abc.Iterable[Value], alpha: float) -> Value"),
        "alpha * sum(p*p for p in params), as micrograd's demo.");

    using SGD = micrograd::SGD<double>;
    nb::class_<SGD>(m, "SGD",
                    "Stochastic gradient descent over a list of values (torch.optim.SGD).")
        .def(
            "__init__",
            [](SGD* self, nb::handle params, double lr, double momentum, double weight_decay) {
                new (self) SGD(values<double>(params, "SGD: params"), lr, momentum, weight_decay);
            },
            "params"_a, "lr"_a, "momentum"_a = 0.0, "weight_decay"_a = 0.0,
            nb::sig("def __init__(self, params: collections.abc.Iterable[Value], lr: float, "
                    "momentum: float = 0.0, weight_decay: float = 0.0) -> None"))
        .def("step", &SGD::step, "Update every parameter from its grad.")
        .def("zero_grad", &SGD::zero_grad, "Set every parameter's grad to 0.")
        .def_prop_rw("lr", &SGD::lr, &SGD::set_lr, "The learning rate (may change between steps).")
        .def(
            "__reduce__",
            [](nb::handle self) {
                const SGD& o = nb::cast<const SGD&>(self);
                return nb::make_tuple(
                    self.type(),
                    nb::make_tuple(objects(o.params()), o.lr(), o.momentum(), o.weight_decay()),
                    nb::make_tuple("micrograd_cpp.SGD", OPTIMIZER_VERSION, floats(o.buffers()),
                                   o.steps()));
            },
            nb::sig("def __reduce__(self) -> tuple[type[SGD], tuple[object, ...], "
                    "tuple[object, ...]]"),
            "Pickle support: the parameters and hyperparameters, then the momentum buffers\n"
            "and the step count (plain data, checked when loaded).")
        .def(
            "__setstate__",
            [](nb::handle self, nb::handle state) {
                set_optimizer_state(state, "SGD", 4, [self](const nb::tuple& s, long steps) {
                    nb::cast<SGD&>(self).restore(reals(s[2], "momentum buffers"), steps);
                });
            },
            "state"_a, nb::sig("def __setstate__(self, state: tuple[object, ...], /) -> None"),
            "Unpickling: the state __reduce__ made (ValueError if it is malformed).");

    using Adam = micrograd::Adam<double>;
    nb::class_<Adam>(m, "Adam", "Adam over a list of values (torch.optim.Adam, L2 weight decay).")
        .def(
            "__init__",
            [](Adam* self, nb::handle params, double lr, double beta1, double beta2, double eps,
               double weight_decay) {
                new (self) Adam(values<double>(params, "Adam: params"), lr, beta1, beta2, eps,
                                weight_decay);
            },
            "params"_a, "lr"_a = 1e-3, "beta1"_a = 0.9, "beta2"_a = 0.999, "eps"_a = 1e-8,
            "weight_decay"_a = 0.0,
            nb::sig(
                "def __init__(self, params: collections.abc.Iterable[Value], lr: float = 0.001, "
                "beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-08, "
                "weight_decay: float = 0.0) -> None"))
        .def("step", &Adam::step, "Update every parameter from its grad.")
        .def("zero_grad", &Adam::zero_grad, "Set every parameter's grad to 0.")
        .def_prop_rw("lr", &Adam::lr, &Adam::set_lr,
                     "The learning rate (may change between steps).")
        .def(
            "__reduce__",
            [](nb::handle self) {
                const Adam& o = nb::cast<const Adam&>(self);
                return nb::make_tuple(self.type(),
                                      nb::make_tuple(objects(o.params()), o.lr(), o.beta1(),
                                                     o.beta2(), o.eps(), o.weight_decay()),
                                      nb::make_tuple("micrograd_cpp.Adam", OPTIMIZER_VERSION,
                                                     floats(o.first_moments()),
                                                     floats(o.second_moments()), o.steps()));
            },
            nb::sig("def __reduce__(self) -> tuple[type[Adam], tuple[object, ...], "
                    "tuple[object, ...]]"),
            "Pickle support: the parameters and hyperparameters, then the moments and the\n"
            "step count (plain data, checked when loaded).")
        .def(
            "__setstate__",
            [](nb::handle self, nb::handle state) {
                set_optimizer_state(state, "Adam", 5, [self](const nb::tuple& s, long steps) {
                    nb::cast<Adam&>(self).restore(reals(s[2], "first moments"),
                                                  reals(s[3], "second moments"), steps);
                });
            },
            "state"_a, nb::sig("def __setstate__(self, state: tuple[object, ...], /) -> None"),
            "Unpickling: the state __reduce__ made (ValueError if it is malformed).");
}

}  // namespace mgpy
