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

// NumPy's ufunc for each operator. Value sets __array_ufunc__ = None, so that a NumPy
// scalar or array returns NotImplemented for `x op v` at once and Python calls Value's
// slot: `np.int64(-1) * v` (micrograd's loop over NumPy labels) is then one quick Value,
// where NumPy's own object machinery takes ~4 us (~1 us with __array_priority__). Arrays
// are then broadcast here (array_op), as NumPy would have without it.
template <class Op>
constexpr const char* ufunc = nullptr;
template <>
constexpr const char* ufunc<std::plus<>> = "add";
template <>
constexpr const char* ufunc<std::minus<>> = "subtract";
template <>
constexpr const char* ufunc<std::multiplies<>> = "multiply";
template <>
constexpr const char* ufunc<std::divides<>> = "true_divide";

struct Power {
    template <class V>
    V operator()(const V& x, const V& y) const {
        return pow(x, y);
    }
};
template <>
constexpr const char* ufunc<Power> = "power";

// `x op y` for a Value and a NumPy array (either side): the ufunc applies the op to each
// item, with the Value inside a 0-d object array (NumPy takes no Value as an operand of
// its own, by __array_ufunc__ = None). NotImplemented when the other is not an array
// (NumPy is imported already if it is one).
template <class T, class Op>
nb::object array_op(PyObject* x, PyObject* y) {
    const bool value_left = Py_TYPE(x) == py_type<T>;
    nb::object numpy = nb::steal(PyImport_GetModule(nb::str("numpy").ptr()));
    if (!numpy.is_valid()) {
        if (PyErr_Occurred()) throw nb::python_error();
        return not_implemented();
    }
    const int is_array = PyObject_IsInstance(value_left ? y : x, numpy.attr("ndarray").ptr());
    if (is_array < 0) throw nb::python_error();
    if (!is_array) return not_implemented();
    nb::object box = numpy.attr("empty")(nb::tuple(), "dtype"_a = "object");
    box[nb::tuple()] = nb::handle(value_left ? x : y);
    return numpy.attr(ufunc<Op>)(value_left ? box : nb::handle(x),
                                 value_left ? nb::handle(y) : box);
}

// A binary slot: `x op y` where x or y (or both) is a Value of this precision; the other
// may be a number (a new leaf, as in micrograd) or a NumPy array (array_op).
// NotImplemented for anything else.
template <class T, class Op>
PyObject* binary_slot(PyObject* x, PyObject* y) noexcept {
    return guarded([&]() -> nb::object {
        if (Py_TYPE(x) == py_type<T>) {  // self op other
            auto other = operand<T>(y);
            return other ? wrap<T>(Op{}(value_of<T>(x), *other)) : array_op<T, Op>(x, y);
        }
        if (Py_TYPE(y) != py_type<T>) return not_implemented();
        auto other = operand<T>(x);  // other op self
        return other ? wrap<T>(Op{}(*other, value_of<T>(y))) : array_op<T, Op>(x, y);
    });
}

// x ** y: a number exponent makes micrograd's '**k' node; pow() with a modulus is not ours.
template <class T>
PyObject* power_slot(PyObject* x, PyObject* y, PyObject* modulus) noexcept {
    if (modulus != Py_None) Py_RETURN_NOTIMPLEMENTED;
    if (Py_TYPE(x) == py_type<T> && Py_TYPE(y) != py_type<T>) {
        return guarded([&]() -> nb::object {
            if (auto k = scalar_operand(y))
                return wrap<T>(value_of<T>(x).pow_constant(static_cast<T>(*k), is_integer(y)));
            auto other = operand<T>(y);  // the other precision: its TypeError
            return other ? wrap<T>(pow(value_of<T>(x), *other)) : array_op<T, Power>(x, y);
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

// What a node carries for Python beside its numbers, kept while the node lives (so a node
// reached again through `_prev` has it, whichever Python object stands for it): its label;
// for a custom node (Value(data, children, op), micrograd's way to write an op), its op's
// label and its Python _backward; and attributes set on it (v.foo = 1). A node with extras
// is marked in_side_table(), and the core's on_free hook drops them when it dies.
struct Extras {
    std::string label;
    std::string op;       // a custom node's _op
    bool custom = false;  // made as Value(data, children, op)
    nb::object backward;  // a custom node's _backward, when one was assigned
    nb::object dict;      // the node's attributes, from the first one on

    bool empty() const { return label.empty() && !custom && !dict.is_valid(); }
    bool holds_objects() const { return backward.is_valid() || dict.is_valid(); }
};

template <class T>
std::unordered_map<const micrograd::Node<T>*, Extras>& extras_table() {
    static auto* instance = new std::unordered_map<const micrograd::Node<T>*, Extras>();
    return *instance;  // never destroyed, like the arenas
}

template <class T>
Extras* find_extras(const micrograd::Node<T>* n) {
    if (!n->in_side_table()) return nullptr;
    return &extras_table<T>().at(n);
}

template <class T>
Extras& extras_of(micrograd::Node<T>* n) {
    n->set_in_side_table(true);
    return extras_table<T>()[n];
}

// Forgets n's extras when they hold nothing any more.
template <class T>
void prune_extras(micrograd::Node<T>* n) {
    auto& table = extras_table<T>();
    auto it = table.find(n);
    if (it == table.end() || !it->second.empty()) return;
    table.erase(it);
    n->set_in_side_table(false);
}

// The core's on_free hook. The extras leave the table before their Python objects are
// dropped: dropping them runs Python code (a closure's cells, say) that may free other
// nodes and so come back here.
template <class T>
void drop_extras(micrograd::Node<T>* n) noexcept {
    auto& table = extras_table<T>();
    auto it = table.find(n);
    if (it == table.end()) return;
    const Extras dying = std::move(it->second);
    table.erase(it);
}

template <class T>
std::string get_label(const micrograd::Value<T>& v) {
    const Extras* e = find_extras(v.node());
    return e != nullptr ? e->label : std::string();
}

template <class T>
void set_label(const micrograd::Value<T>& v, nb::handle label) {
    if (!nb::isinstance<nb::str>(label))
        throw nb::type_error(("label must be a str, not '" + py_type_name(label) + "'").c_str());
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(label.ptr(), &size);
    if (utf8 == nullptr) throw nb::python_error();  // a lone surrogate: UnicodeEncodeError
    extras_of(v.node()).label.assign(utf8, static_cast<std::size_t>(size));
    prune_extras(v.node());
}

// A Value is a GC type so that a node's Python objects (its _backward, its attributes) can
// be shown to the cyclic GC: a custom op's closure refers to its own result (`out.grad`),
// a cycle through C++ that the GC must be able to break. Every object is untracked when
// made, so plain values cost the GC nothing (micrograd's spends most of its time there),
// and tracked when its node gets such objects. They are reported only while the object
// is the node's only owner (refs == 1): a node that other nodes or handles still hold
// needs its _backward, and stays.
template <class T>
micrograd::Node<T>* node_of(PyObject* self) {
    return nb::inst_ptr<PyValue<T>>(self)->v.node();
}

template <class T>
int traverse_slot(PyObject* self, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(self));
    if (!nb::inst_ready(self)) return 0;
    const micrograd::Node<T>* n = node_of<T>(self);
    const Extras* e = n->refs == 1 ? find_extras(n) : nullptr;
    if (e == nullptr) return 0;
    if (e->backward.is_valid()) Py_VISIT(e->backward.ptr());
    if (e->dict.is_valid()) Py_VISIT(e->dict.ptr());
    return 0;
}

template <class T>
int clear_slot(PyObject* self) {
    if (!nb::inst_ready(self)) return 0;
    micrograd::Node<T>* n = node_of<T>(self);
    Extras* e = n->refs == 1 ? find_extras(n) : nullptr;
    if (e == nullptr) return 0;
    nb::object backward = std::move(e->backward), dict = std::move(e->dict);
    e->backward = nb::object();
    e->dict = nb::object();
    prune_extras(n);
    return 0;  // backward and dict are dropped here, after the table is consistent
}

// Tracks self when its node's extras hold Python objects (see traverse_slot).
void track(PyObject* self) {
    if (!PyObject_GC_IsTracked(self)) PyObject_GC_Track(self);
}

// v.data and v.grad, read and written for every parameter in micrograd's training loop,
// are answered before Python's generic lookup, which finds the properties (kept for
// help() and the stubs) at about twice the cost. Attribute names in code are interned,
// so a pointer comparison finds them; any other string takes the generic path.
struct HotNames {
    PyObject* data = PyUnicode_InternFromString("data");
    PyObject* grad = PyUnicode_InternFromString("grad");
};

const HotNames& hot_names() {
    static const auto* names = new HotNames();  // never freed, like the Python strings
    return *names;
}

// Attributes set on a value (v.foo = 1) live with its node (Extras::dict); Python's own
// lookup comes first, so label and the methods cost nothing more.
template <class T>
PyObject* getattro_slot(PyObject* self, PyObject* name) noexcept {
    const HotNames& hot = hot_names();
    if (name == hot.data) return PyFloat_FromDouble(value_of<T>(self).data());
    if (name == hot.grad) return PyFloat_FromDouble(value_of<T>(self).grad());
    PyObject* found = PyObject_GenericGetAttr(self, name);
    if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError)) return found;
    micrograd::Node<T>* n = node_of<T>(self);
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "__dict__") == 0) {
        PyErr_Clear();
        return guarded([&] {  // vars(v): the node's attributes, as a dict that stays theirs
            Extras& e = extras_of(n);
            if (!e.dict.is_valid()) e.dict = nb::dict();
            track(self);
            return e.dict;
        });
    }
    const Extras* e = find_extras(n);
    if (e == nullptr || !e->dict.is_valid()) return nullptr;  // the AttributeError stands
    PyObject *type, *error, *trace;  // set aside while the node's dict is read
    PyErr_Fetch(&type, &error, &trace);
    PyObject* item = PyDict_GetItemWithError(e->dict.ptr(), name);
    if (item == nullptr && !PyErr_Occurred()) {
        PyErr_Restore(type, error, trace);  // not there either: the AttributeError stands
        return nullptr;
    }
    Py_XDECREF(type);
    Py_XDECREF(error);
    Py_XDECREF(trace);
    return item != nullptr ? Py_NewRef(item) : nullptr;
}

template <class T>
int setattro_slot(PyObject* self, PyObject* name, PyObject* value) noexcept {
    const HotNames& hot = hot_names();
    if ((name == hot.data || name == hot.grad) && value != nullptr) {
        PyObject* done = guarded([&] {
            const std::optional<double> x = as_real(value);
            if (!x) throw_not_real(value, std::string(Names<T>::cls) + "." + nb::str(name).c_str());
            micrograd::Value<T>& v = nb::inst_ptr<PyValue<T>>(self)->v;
            name == hot.data ? v.set_data(static_cast<T>(*x)) : v.set_grad(static_cast<T>(*x));
            return nb::none();
        });
        if (done == nullptr) return -1;
        Py_DECREF(done);
        return 0;
    }
    if (PyObject_GenericSetAttr(self, name, value) == 0) return 0;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
    // The type's own attributes (a read-only property, a method) keep their error.
    PyObject *type, *error, *trace;
    PyErr_Fetch(&type, &error, &trace);
    PyObject* own = PyObject_GetAttr(reinterpret_cast<PyObject*>(Py_TYPE(self)), name);
    if (own != nullptr) {
        Py_DECREF(own);
        PyErr_Restore(type, error, trace);
        return -1;
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(error);
    Py_XDECREF(trace);
    micrograd::Node<T>* n = node_of<T>(self);
    if (value == nullptr) {  // del v.foo
        Extras* e = find_extras(n);
        if (e == nullptr || !e->dict.is_valid() || PyDict_DelItem(e->dict.ptr(), name) != 0) {
            PyErr_Format(PyExc_AttributeError, "'%s' object has no attribute '%U'", Names<T>::cls,
                         name);
            return -1;
        }
        return 0;
    }
    PyObject* done = guarded([&] {
        Extras& e = extras_of(n);
        if (!e.dict.is_valid()) e.dict = nb::dict();
        track(self);
        if (PyDict_SetItem(e.dict.ptr(), name, value) != 0) throw nb::python_error();
        return nb::none();
    });
    if (done == nullptr) return -1;
    Py_DECREF(done);
    return 0;
}

// backward()'s step for a custom node: its Python _backward, if it has one (micrograd's
// default _backward does nothing). An exception it raises stops backward().
template <class T>
void custom_backward(micrograd::Node<T>* n) {
    const Extras* e = find_extras(n);
    if (e == nullptr || !e->backward.is_valid()) return;
    nb::object fn = e->backward;  // alive through the call, whatever it reassigns
    PyObject* result = PyObject_CallNoArgs(fn.ptr());
    if (result == nullptr) throw nb::python_error();
    Py_DECREF(result);
}

// A node made as Value(data, children, op): up to two input values of this precision.
template <class T>
micrograd::Value<T> custom_node(T data, nb::handle children, nb::handle op) {
    if (!PyUnicode_Check(op.ptr()))
        throw nb::type_error((std::string(Names<T>::cls) +
                              "(data, _children, _op): _op must be a str, not '" +
                              py_type_name(op) + "'")
                                 .c_str());
    nb::list items = as_list(children, std::string(Names<T>::cls) +
                                           "(data, _children, _op): "
                                           "_children");
    const std::size_t n = nb::len(items);
    if (n > 2)
        throw nb::value_error((std::string(Names<T>::cls) +
                               "(data, _children, _op): a node has at most 2 inputs here, got " +
                               std::to_string(n) +
                               "; build the op from ops of two inputs (x + y + z is two '+')")
                                  .c_str());
    std::vector<micrograd::Value<T>> in;
    for (std::size_t j = 0; j < n; ++j)
        in.push_back(item_value<T>(items[j], std::string(Names<T>::cls) +
                                                 "(data, _children, _op): _children[" +
                                                 std::to_string(j) + "]"));
    micrograd::Value<T> v =
        micrograd::Value<T>::custom(data, n > 0 ? &in[0] : nullptr, n > 1 ? &in[1] : nullptr);
    if (n == 0 && PyUnicode_GetLength(op.ptr()) == 0) return v;  // a plain leaf
    Extras& e = extras_of(v.node());
    e.custom = true;
    e.op = nb::str(op).c_str();
    return v;
}

template <class T>
PyType_Slot value_slots[] = {
    {Py_nb_add, reinterpret_cast<void*>(binary_slot<T, std::plus<>>)},
    {Py_nb_subtract, reinterpret_cast<void*>(binary_slot<T, std::minus<>>)},
    {Py_nb_multiply, reinterpret_cast<void*>(binary_slot<T, std::multiplies<>>)},
    {Py_nb_true_divide, reinterpret_cast<void*>(binary_slot<T, std::divides<>>)},
    {Py_nb_power, reinterpret_cast<void*>(power_slot<T>)},
    {Py_nb_negative, reinterpret_cast<void*>(negative_slot<T>)},
    {Py_nb_absolute, reinterpret_cast<void*>(absolute_slot<T>)},
    {Py_tp_members, value_members<T>},  // weak references (see common.hpp)
    {Py_tp_alloc, reinterpret_cast<void*>(refuse_alloc<T>)},
    {Py_tp_traverse, reinterpret_cast<void*>(traverse_slot<T>)},
    {Py_tp_clear, reinterpret_cast<void*>(clear_slot<T>)},
    {Py_tp_getattro, reinterpret_cast<void*>(getattro_slot<T>)},
    {Py_tp_setattro, reinterpret_cast<void*>(setattro_slot<T>)},
    {0, nullptr},
};

template <class T>
nb::set inputs(const micrograd::Value<T>& v) {
    nb::set prev;
    for (micrograd::Value<T>& in : v.inputs()) prev.add(wrap<T>(std::move(in)));
    return prev;
}

template <class T>
void bind_value(nb::module_& m, const char* doc) {
    using V = micrograd::Value<T>;
    using Self = PyValue<T>;
    const std::string cls = Names<T>::cls;

    auto c = nb::class_<Self>(m, Names<T>::cls, doc, nb::is_final(), nb::type_slots(value_slots<T>),
                              nb::pooled(1024));
    py_type<T> = reinterpret_cast<PyTypeObject*>(c.ptr());
    c.attr("__array_ufunc__") = nb::none();  // NumPy operands defer to Value (see ufunc)

    micrograd::hooks<T>().on_free = &drop_extras<T>;
    micrograd::hooks<T>().custom_backward = &custom_backward<T>;
    micrograd::hooks<T>().interrupted = []() noexcept { return PyErr_CheckSignals() != 0; };
    // Signatures for the generated stubs: nanobind would say `object` for our nb::object.
    const std::string real = "typing.SupportsFloat | typing.SupportsIndex";
    auto sig = [&cls](const std::string& name, const std::string& params, const std::string& ret) {
        return "def " + name + "(" + params + ") -> " + (ret.empty() ? cls : ret);
    };

    // A custom __new__ rather than __init__: the new object's id goes into the wrapper
    // table before anyone can see it.
    c.def_static(
        "__new__",
        [cls](nb::handle, nb::handle data, nb::handle children, nb::handle op, nb::handle label) {
            const T x = real_or_throw<T>(data, cls + "(data): data");
            const bool leaf = PyTuple_Check(children.ptr()) && PyTuple_Size(children.ptr()) == 0 &&
                              PyUnicode_Check(op.ptr()) && PyUnicode_GetLength(op.ptr()) == 0;
            V v = leaf ? V(x) : custom_node<T>(x, children, op);
            if (!PyUnicode_Check(label.ptr()) || PyUnicode_GetLength(label.ptr()) != 0)
                set_label(v, label);  // a new node has no label: '' needs nothing
            return wrap<T>(std::move(v));
        },
        "cls"_a, "data"_a.none(), "_children"_a.none() = nb::tuple(), "_op"_a.none() = "",
        "label"_a.none() = "",
        nb::sig(sig("__new__",
                    "cls, data: " + real + ", _children: collections.abc.Iterable[" + cls +
                        "] = (), _op: str = '', label: str = ''",
                    "")
                    .c_str()),
        "A new leaf holding ``data`` (converted to a float), with grad 0 and an optional\n"
        "``label`` (a name shown by draw_dot). With ``_children`` (up to two values) and\n"
        "``_op``, micrograd's way to write an op: a node holding ``data`` with those inputs,\n"
        "labelled ``_op``, whose ``_backward`` you assign (a function of no arguments that adds\n"
        "``out.grad`` times the local derivatives into the inputs' grads); backward() calls it\n"
        "in graph order. Such a node cannot be replayed by a Graph, copied or pickled.");
    c.def(
        "__init__", [](nb::handle, nb::handle, nb::handle, nb::handle, nb::handle) {},
        "data"_a.none(), "_children"_a.none() = nb::tuple(), "_op"_a.none() = "",
        "label"_a.none() = "",
        nb::sig(("def __init__(self, data: " + real + ", _children: collections.abc.Iterable[" +
                 cls + "] = (), _op: str = '', label: str = '') -> None")
                    .c_str()));
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
        "_op",
        [](const Self& s) {
            const Extras* e = find_extras(s.v.node());
            return e != nullptr && e->custom ? e->op : op_label(s.v);
        },
        "The op that produced this node, labelled as micrograd does ('' for a leaf).");
    c.def_prop_ro(
        "_prev", [](const Self& s) { return inputs(s.v); },
        nb::for_getter(nb::sig(sig("_prev", "self", "set[" + cls + "]").c_str())),
        "The set of this node's inputs (the same Python objects each time while they live).");

    c.def_prop_rw(
        "_backward",
        [](const Self& s) -> nb::object {
            const Extras* e = find_extras(s.v.node());
            if (e != nullptr && e->backward.is_valid()) return e->backward;
            if (e != nullptr && e->custom) return nb::cpp_function([] {});  // micrograd's default
            return nb::cpp_function([v = s.v] { micrograd::backward_step(v.node()); });
        },
        [cls](nb::handle self, nb::handle fn) {
            auto* n = node_of<T>(self.ptr());
            Extras* e = find_extras(n);
            if (e == nullptr || !e->custom)
                throw nb::attribute_error(
                    ("the _backward of a node made by '" + op_label(nb::inst_ptr<Self>(self)->v) +
                     "' is the core's and cannot be replaced; make your op's node as " + cls +
                     "(data, (x, y), 'op') and assign its _backward")
                        .c_str());
            if (!PyCallable_Check(fn.ptr()))
                throw nb::type_error(
                    ("_backward must be a function of no arguments, not '" + py_type_name(fn) + "'")
                        .c_str());
            e->backward = nb::borrow(fn);
            track(self.ptr());
        },
        nb::for_getter(nb::sig("def _backward(self) -> collections.abc.Callable[[], None]")),
        nb::for_setter(
            nb::sig("def _backward(self, value: collections.abc.Callable[[], None], /) -> None")),
        "This node's own backward step, as micrograd's: calling it adds ``self.grad`` times\n"
        "the local derivatives into the inputs' grads, once (a leaf's does nothing; a fused\n"
        "neuron is expanded first). Assignable on a node made as ``Value(data, children, op)``.");
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
    bind_protocols<T>(c);
}

}  // namespace

template <class T>
std::string custom_op(const micrograd::Node<T>* n) {
    const Extras* e = find_extras(n);
    return e != nullptr ? e->op : std::string();
}
template std::string custom_op<double>(const micrograd::Node<double>*);
template std::string custom_op<float>(const micrograd::Node<float>*);

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
