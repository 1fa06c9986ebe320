// bindings/value.cpp: Value (float64) and Value32 (float32), micrograd's engine API.
#include <charconv>
#include <functional>
#include <unordered_map>

#include "common.hpp"

namespace mgpy {
namespace {

using micrograd::Op;
using namespace nb::literals;

// micrograd's operators are the type's number slots, C functions that CPython calls
// directly for `x + y`, rather than methods: a method (a nanobind function) would cost a
// lookup of __add__ and nanobind's dispatch at every op. CPython makes __add__, __radd__
// and the rest from the slots; the stubs give their signatures (bindings/stubs.pat).

// Runs f (which returns the slot's result) for a C slot: a C++ exception becomes a
// Python exception and nullptr, as nanobind would translate it.
template <class F>
PyObject* guarded(F f) noexcept {
    try {
        return f().release().ptr();
    } catch (nb::python_error& e) {
        e.restore();
    } catch (const nb::builtin_exception& e) {  // nb::type_error from operand()
        PyErr_SetString(
            e.type() == nb::exception_type::type_error ? PyExc_TypeError : PyExc_RuntimeError,
            e.what());
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

template <class T>
const micrograd::Value<T>& value_of(PyObject* o) {
    return nb::inst_ptr<PyValue<T>>(o)->v;
}

// A binary slot: `x op y` where x or y (or both) is a Value of this precision; the other
// may be a number (a new leaf, as in micrograd). NotImplemented for anything else.
template <class T, class Op>
PyObject* binary_slot(PyObject* x, PyObject* y) noexcept {
    return guarded([&]() -> nb::object {
        if (Py_TYPE(x) == py_type<T>) {  // self op other
            auto other = operand<T>(y);
            return other ? wrap<T>(Op{}(value_of<T>(x), *other)) : not_implemented();
        }
        if (Py_TYPE(y) != py_type<T>) return not_implemented();
        auto other = operand<T>(x);  // other op self
        return other ? wrap<T>(Op{}(*other, value_of<T>(y))) : not_implemented();
    });
}

struct Power {
    template <class V>
    V operator()(const V& x, const V& y) const {
        return pow(x, y);
    }
};

// x ** y: a number exponent makes micrograd's '**k' node; pow() with a modulus is not ours.
template <class T>
PyObject* power_slot(PyObject* x, PyObject* y, PyObject* modulus) noexcept {
    if (modulus != Py_None) Py_RETURN_NOTIMPLEMENTED;
    if (Py_TYPE(x) == py_type<T> && Py_TYPE(y) != py_type<T>) {
        return guarded([&]() -> nb::object {
            if (auto k = as_real(y))
                return wrap<T>(value_of<T>(x).pow_constant(static_cast<T>(*k), is_integer(y)));
            auto other = operand<T>(y);  // the other precision: its TypeError
            return other ? wrap<T>(pow(value_of<T>(x), *other)) : not_implemented();
        });
    }
    return binary_slot<T, Power>(x, y);
}

template <class T>
PyObject* negative_slot(PyObject* x) noexcept {
    return guarded([&] { return wrap<T>(-value_of<T>(x)); });
}

template <class T>
PyObject* absolute_slot(PyObject* x) noexcept {
    return guarded([&] { return wrap<T>(value_of<T>(x).abs()); });
}

template <class T>
PyType_Slot number_slots[] = {
    {Py_nb_add, reinterpret_cast<void*>(binary_slot<T, std::plus<>>)},
    {Py_nb_subtract, reinterpret_cast<void*>(binary_slot<T, std::minus<>>)},
    {Py_nb_multiply, reinterpret_cast<void*>(binary_slot<T, std::multiplies<>>)},
    {Py_nb_true_divide, reinterpret_cast<void*>(binary_slot<T, std::divides<>>)},
    {Py_nb_power, reinterpret_cast<void*>(power_slot<T>)},
    {Py_nb_negative, reinterpret_cast<void*>(negative_slot<T>)},
    {Py_nb_absolute, reinterpret_cast<void*>(absolute_slot<T>)},
    {Py_tp_members, value_members<T>},  // weak references (see common.hpp)
    {Py_tp_alloc, reinterpret_cast<void*>(refuse_alloc<T>)},
    {0, nullptr},
};

// micrograd labels x**k as f"**{k}" with k as given: "**2" for an int, "**0.1" for a float.
// A float32 exponent prints as the shortest decimal that reads back as that float32, so
// Value32(x) ** 0.1 is labelled "**0.1" too.
template <class T>
std::string op_label(const micrograd::Value<T>& v) {
    std::string label = micrograd::op_name(v.op());
    if (v.op() != Op::pow_const) return label;
    const T k = v.exponent();
    nb::object number;
    if (v.exponent_is_integer()) {
        number = nb::steal(PyLong_FromDouble(k));
    } else if constexpr (std::is_same_v<T, float>) {
        char digits[32];
        const auto end = std::to_chars(digits, digits + sizeof digits, k).ptr;
        number = nb::float_(nb::str(digits, static_cast<std::size_t>(end - digits)));
    } else {
        number = nb::float_(k);
    }
    return label + nb::str(number).c_str();
}

// Labels live beside the nodes, which have no room for a string: a labelled node is
// flagged, and the arena's on_free hook drops its label when the node dies.
template <class T>
std::unordered_map<const micrograd::Node<T>*, std::string>& labels() {
    static auto* instance = new std::unordered_map<const micrograd::Node<T>*, std::string>();
    return *instance;  // never destroyed, like the arenas
}

template <class T>
void drop_label(micrograd::Node<T>* n) noexcept {
    labels<T>().erase(n);
}

template <class T>
std::string get_label(const micrograd::Value<T>& v) {
    const auto* n = v.node();
    return (n->flags & micrograd::detail::flag_has_extra) ? labels<T>().at(n) : std::string();
}

template <class T>
void set_label(const micrograd::Value<T>& v, nb::handle label) {
    if (!nb::isinstance<nb::str>(label))
        throw nb::type_error(("label must be a str, not '" + py_type_name(label) + "'").c_str());
    auto* n = v.node();
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(label.ptr(), &size);
    if (utf8 == nullptr) throw nb::python_error();  // a lone surrogate: UnicodeEncodeError
    std::string text(utf8, static_cast<std::size_t>(size));
    if (text.empty()) {
        labels<T>().erase(n);
        n->flags &= ~micrograd::detail::flag_has_extra;
    } else {
        labels<T>()[n] = std::move(text);
        n->flags |= micrograd::detail::flag_has_extra;
    }
}

template <class T>
nb::set inputs(const micrograd::Value<T>& v) {
    nb::set prev;
    auto* n = v.node();
    micrograd::expand(n);  // a fused neuron shows micrograd's nodes
    if (n->a != nullptr) prev.add(wrap<T>(micrograd::Value<T>::from_node(n->a)));
    if (micrograd::detail::is_binary(n->op))
        prev.add(wrap<T>(micrograd::Value<T>::from_node(n->b)));
    return prev;
}

template <class T>
void bind_value(nb::module_& m, const char* doc) {
    using V = micrograd::Value<T>;
    using Self = PyValue<T>;
    const std::string cls = Names<T>::cls;

    auto c =
        nb::class_<Self>(m, Names<T>::cls, doc, nb::is_final(), nb::type_slots(number_slots<T>));
    py_type<T> = reinterpret_cast<PyTypeObject*>(c.ptr());

    micrograd::detail::context<T>().on_free = &drop_label<T>;
    micrograd::detail::context<T>().interrupted = []() noexcept {
        return PyErr_CheckSignals() != 0;
    };
    // Signatures for the generated stubs: nanobind would say `object` for our nb::object.
    const std::string real = "typing.SupportsFloat | typing.SupportsIndex";
    auto sig = [&cls](const std::string& name, const std::string& params, const std::string& ret) {
        return "def " + name + "(" + params + ") -> " + (ret.empty() ? cls : ret);
    };

    // A custom __new__ rather than __init__: the new object's id goes into the wrapper
    // table before anyone can see it.
    c.def_static(
        "__new__",
        [cls](nb::handle, nb::handle data, nb::handle label) {
            V v(real_or_throw<T>(data, cls + "(data): data"));
            if (!PyUnicode_Check(label.ptr()) || PyUnicode_GetLength(label.ptr()) != 0)
                set_label(v, label);  // a new node has no label: '' needs nothing
            return wrap<T>(std::move(v));
        },
        "cls"_a, "data"_a.none(), nb::kw_only(), "label"_a.none() = "",
        nb::sig(sig("__new__", "cls, data: " + real + ", *, label: str = ''", "").c_str()),
        "A new leaf holding ``data`` (converted to a float), with grad 0 and an optional\n"
        "``label`` (a name shown by draw_dot).");
    c.def(
        "__init__", [](nb::handle, nb::handle, nb::handle) {}, "data"_a.none(), nb::kw_only(),
        "label"_a.none() = "",
        nb::sig(("def __init__(self, data: " + real + ", *, label: str = '') -> None").c_str()));
    c.def_prop_rw(
        "label", [](const Self& s) { return get_label(s.v); },
        [](Self& s, nb::handle label) { set_label(s.v, label); },
        nb::for_setter(nb::sig("def label(self, value: str, /) -> None")),
        "A name for this node, shown by draw_dot ('' when unset; writable on any node).");
    c.def_prop_rw(
        "data", [](const Self& s) { return static_cast<double>(s.v.data()); },
        [cls](Self& s, nb::handle d) { s.v.set_data(real_or_throw<T>(d, cls + ".data")); },
        nb::for_setter(nb::sig(("def data(self, value: " + real + ", /) -> None").c_str())),
        "The scalar this node holds (always a Python float; writable).");
    c.def_prop_rw(
        "grad", [](const Self& s) { return static_cast<double>(s.v.grad()); },
        [cls](Self& s, nb::handle g) { s.v.set_grad(real_or_throw<T>(g, cls + ".grad")); },
        nb::for_setter(nb::sig(("def grad(self, value: " + real + ", /) -> None").c_str())),
        "d(root)/d(this node), accumulated by backward() (writable; set it to 0 to reset).");
    c.def_prop_ro(
        "_op", [](const Self& s) { return op_label(s.v); },
        "The op that produced this node, labelled as micrograd does ('' for a leaf).");
    c.def_prop_ro(
        "_prev", [](const Self& s) { return inputs(s.v); },
        nb::for_getter(nb::sig(sig("_prev", "self", "set[" + cls + "]").c_str())),
        "The set of this node's inputs (the same Python objects each time while they live).");

    c.def(
        "backward",
        [](Self& s) {
            try {
                s.v.backward();
            } catch (const micrograd::Interrupted&) {
                throw nb::python_error();  // the KeyboardInterrupt that stopped it
            }
        },
        "Backpropagate from this node, as micrograd does: set this node's grad to 1, then add\n"
        "d(this)/d(node) into the grad of every node it depends on. Grads are not reset first,\n"
        "so calling it twice accumulates (reset them with ``v.grad = 0`` or ``zero_grad()``).\n"
        "Ctrl-C stops a long backward with KeyboardInterrupt, leaving grads partly updated.");

    // One method per unary op of the table that names one (relu, tanh, ..., abs).
    micrograd::for_each_op([&](Op op, auto row) {
        using Row = decltype(row);
        if constexpr (Row::method != nullptr)
            c.def(
                Row::method, [op](const Self& s) { return wrap<T>(s.v.apply(op)); },
                nb::sig(sig(Row::method, "self", "").c_str()), Row::doc);
    });

    c.def(
        "__repr__",
        [cls](const Self& s) {
            return nb::str("{}(data={}, grad={})")
                .format(cls, nb::float_(s.v.data()), nb::float_(s.v.grad()));
        },
        "micrograd's repr: Value(data=..., grad=...).");
    // Make NumPy scalars defer to our reflected operators (np.float64(2) * v is a Value).
    c.attr("__array_ufunc__") = nb::none();
    bind_protocols<T>(c);
}

}  // namespace

void bind_values(nb::module_& m) {
    bind_value<double>(m,
                       "A scalar (float64) in a computation graph, with micrograd's API: build\n"
                       "expressions with + - * / ** and the methods below, then call backward()\n"
                       "on the result to fill in .grad of everything it depends on.");
    bind_value<float>(m,
                      "Value with float32 data and grads: every op computes in float32.\n"
                      "Value32 and Value cannot be mixed in one expression.");
}

}  // namespace mgpy
