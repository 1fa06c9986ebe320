// bindings/nn.cpp: the bulk builders, losses and optimizers behind micrograd_cpp.nn (float64).
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

using Operands = std::vector<micrograd::Operand<double>>;
using Params = micrograd::NeuronParams<double>;
using LayerParams = micrograd::LayerParams<double>;

// A neuron's parameters from Python: w a list of values or numbers, b a value or a number.
// A number becomes a new leaf here, at each call, as micrograd's `Value(other)` at each use.
Params neuron_params(nb::handle w, nb::handle b, bool relu) {
    nb::list ws = as_list(w, "Neuron.w");
    const Operands weights = operands<double>(ws, "Neuron.w");  // `ws` owns the values
    V bias;
    if (Py_TYPE(b.ptr()) == py_type<double>) {
        bias = nb::inst_ptr<PyValue<double>>(b)->v;
    } else if (auto number = as_real(b)) {
        bias = V(*number);
    } else {
        throw nb::type_error(
            ("Neuron.b must be a Value or a number, not '" + py_type_name(b) + "'").c_str());
    }
    return {micrograd::NodeRow<double>(weights.data(), weights.size()), bias, relu};
}

// The layer given as (w, b, nonlin) per neuron.
LayerParams layer_params(nb::handle neurons) {
    LayerParams out;
    for (nb::handle n : as_list(neurons, "neurons")) {
        if (!PyTuple_Check(n.ptr()) || PyTuple_Size(n.ptr()) != 3)
            throw nb::type_error("neurons must hold (w, b, nonlin) tuples");
        const nb::tuple t = nb::borrow<nb::tuple>(n);
        const int relu = PyObject_IsTrue(t[2].ptr());
        if (relu < 0) throw nb::python_error();
        out.push_back(neuron_params(t[0], t[1], relu != 0));
    }
    return out;
}

// The result of Layer.__call__ and MLP.__call__: a bare Value for one output, as micrograd's.
nb::object layer_result(std::vector<V> out) {
    if (out.size() == 1) return wrap<double>(std::move(out[0]));
    nb::list values;
    for (V& v : out) values.append(wrap<double>(std::move(v)));
    return values;
}

// MLP.__call__'s plan (nn.py's MLP._current_plan): the model's neurons as the core's
// LayerParams, made from what Python hands it, with the lists Python read them from
// (MLP.layers, each Layer.neurons, each Neuron.w) and nn's count of attribute changes
// then. It is current while the count is the same and those lists hold the same objects;
// it holds the lists and their items (the GC sees them: tp_traverse), so "the same
// object" cannot be a new one at a freed address. A class's __call__ replaced is for
// nn.py to check.
class MLPPlan {
public:
    MLPPlan(nb::handle lists, nb::handle layers, nb::handle parameters, std::uint64_t changes)
        : changes_(changes) {
        for (nb::handle list : as_list(lists, "lists")) {
            if (!PyList_CheckExact(list.ptr()))
                throw nb::type_error("MLPPlan: lists must be lists");
            Watched& w = watched_.emplace_back(Watched{nb::borrow(list), {}});
            for (nb::handle item : nb::borrow<nb::list>(list)) {
                w.items.push_back(item.ptr());
                keep_.push_back(nb::borrow(item));
            }
        }
        for (nb::handle layer : as_list(layers, "layers")) layers_.push_back(layer_params(layer));
        for (nb::handle p : as_list(parameters, "parameters")) {
            item_value<double>(p, "MLPPlan: parameters");
            parameters_.push_back(p.ptr());
            keep_.push_back(nb::borrow(p));
        }
    }

    // Whether nn counts `changes` attribute changes, as when the plan was made, and every
    // list still holds the objects it held then.
    bool current(std::uint64_t changes) const {
        if (changes != changes_) return false;
        for (const Watched& w : watched_)
            if (!list_holds(w.list.ptr(), w.items)) return false;
        return !watched_.empty();  // none after tp_clear
    }

    // MLP.__call__ if the plan is current (`changes` as in current()), else None, before x
    // is read: reading it may consume it (a generator), and the caller tries again with a
    // new plan. (Code run while x is read, e.g. an item's __float__, may change the model:
    // the call computes with the model as it was when it began, whose objects the plan
    // holds.)
    nb::object operator()(nb::handle x, std::uint64_t changes) const {
        if (!current(changes)) return nb::none();
        nb::list xs = as_list(x, "MLP input");
        const Operands in = operands<double>(xs, "MLP input");  // `xs` owns the values
        if (layers_.empty()) return nb::borrow(x);  // micrograd's loop leaves x as it was
        return layer_result(micrograd::mlp_forward(layers_, in.data(), in.size()));
    }

    nb::list parameters() const {
        nb::list out = nb::steal<nb::list>(PyList_New(static_cast<Py_ssize_t>(parameters_.size())));
        for (std::size_t i = 0; i < parameters_.size(); ++i)
            PyList_SetItem(out.ptr(), static_cast<Py_ssize_t>(i), Py_NewRef(parameters_[i]));
        return out;
    }

    static int traverse(PyObject* self, visitproc visit, void* arg) {
        Py_VISIT(Py_TYPE(self));
        if (!nb::inst_ready(self)) return 0;
        const MLPPlan& plan = *nb::inst_ptr<MLPPlan>(self);
        for (const Watched& w : plan.watched_) Py_VISIT(w.list.ptr());
        for (const nb::object& o : plan.keep_) Py_VISIT(o.ptr());
        return 0;
    }

    static int clear(PyObject* self) {
        MLPPlan& plan = *nb::inst_ptr<MLPPlan>(self);
        std::vector<Watched> watched = std::move(plan.watched_);
        std::vector<nb::object> keep = std::move(plan.keep_);
        plan.watched_.clear(), plan.keep_.clear(), plan.parameters_.clear();
        return 0;  // the objects go here, with the plan consistent (and not current)
    }

private:
    struct Watched {
        nb::object list;
        std::vector<PyObject*> items;  // held by keep_
    };
    std::vector<Watched> watched_;
    std::vector<nb::object> keep_;       // every item of the lists, and the parameters
    std::vector<PyObject*> parameters_;  // held by keep_
    std::vector<LayerParams> layers_;
    std::uint64_t changes_;
};

PyType_Slot plan_slots[] = {{Py_tp_traverse, reinterpret_cast<void*>(MLPPlan::traverse)},
                            {Py_tp_clear, reinterpret_cast<void*>(MLPPlan::clear)},
                            {0, nullptr}};

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
        "layer_forward",
        [](nb::handle neurons, nb::handle x) {
            LayerParams layer = layer_params(neurons);
            nb::list xs = as_list(x, "Layer input");
            const Operands in = operands<double>(xs, "Layer input");  // `xs` owns the values
            std::vector<V> out;
            micrograd::layer_forward(layer, in.data(), in.size(), out);
            return layer_result(std::move(out));
        },
        "neurons"_a, "x"_a,
        nb::sig(
            "def layer_forward(neurons: collections.abc.Iterable[tuple["
            "collections.abc.Iterable[Value | typing.SupportsFloat], "
            "Value | typing.SupportsFloat, bool]], "
            "x: collections.abc.Iterable[Value | typing.SupportsFloat]) -> Value | list[Value]"),
        "micrograd's Layer.__call__ for neurons given as (w, b, nonlin): each one\n"
        "sum((wi*xi ...), b), relu'd if nonlin; a bare Value for one neuron.");
    nb::class_<MLPPlan>(m, "MLPPlan", nb::type_slots(plan_slots),
                        "What MLP.__call__ computes from, kept between calls (nn.py).")
        .def(nb::init<nb::handle, nb::handle, nb::handle, std::uint64_t>(), "lists"_a, "layers"_a,
             "parameters"_a, "changes"_a,
             nb::sig("def __init__(self, lists: collections.abc.Iterable[list[object]], "
                     "layers: collections.abc.Iterable[collections.abc.Iterable[tuple["
                     "collections.abc.Iterable[Value | typing.SupportsFloat], "
                     "Value | typing.SupportsFloat, bool]]], "
                     "parameters: collections.abc.Iterable[Value], changes: int) -> None"),
             "The neurons of each layer as (w, b, nonlin), the model's parameters, the lists\n"
             "they were read from, and nn's count of attribute changes then.")
        .def("current", &MLPPlan::current, "changes"_a,
             "Whether nn counts ``changes`` attribute changes, as when the plan was made,\n"
             "and every list still holds the objects it held then.")
        .def("__call__", &MLPPlan::operator(), "x"_a, "changes"_a,
             nb::sig("def __call__(self, x: collections.abc.Iterable[Value | "
                     "typing.SupportsFloat], changes: int) -> typing.Any"),
             "The layers in turn on x: one Value, or a list for several outputs (x itself\n"
             "when there are no layers, as micrograd); None when the plan is not current.")
        .def("parameters", &MLPPlan::parameters, nb::sig("def parameters(self) -> list[Value]"),
             "The model's parameters, in order.");
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
