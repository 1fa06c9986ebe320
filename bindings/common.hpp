// bindings/common.hpp: Python <-> core conversions shared by the binding files.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <cstddef>
#include <cstring>
#include <micrograd.hpp>
#include <optional>
#include <string>
#include <vector>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>  // T_PYSSIZET and READONLY, named Py_T_PYSSIZET and Py_READONLY
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

namespace mgpy {

namespace nb = nanobind;

// The Python objects of nodes, by id. At most one Python object exists per node at a time:
// the node's `wrapper_id` holds its id here, so every path that hands a node to Python (an
// op's result, `_prev`) returns the same object while it is alive. That keeps micrograd's
// id()- and set-based graph code working. When Python drops the object its id is freed;
// the node itself lives on while consumers refer to it. Id 0 means "no object".
class Wrappers {
public:
    PyObject* get(std::uint32_t id) const { return objects_[id]; }
    std::uint32_t add(PyObject* o) {
        if (free_.empty()) {
            if (free_.capacity() < objects_.size() + 1)    // so that remove() never allocates
                free_.reserve(2 * (objects_.size() + 1));  // (geometrically: O(1) amortised)
            objects_.push_back(o);
            return static_cast<std::uint32_t>(objects_.size() - 1);
        }
        const std::uint32_t id = free_.back();
        free_.pop_back();
        objects_[id] = o;
        return id;
    }
    void remove(std::uint32_t id) {
        objects_[id] = nullptr;
        free_.push_back(id);  // capacity was reserved when the id was added
    }

private:
    std::vector<PyObject*> objects_{nullptr};
    std::vector<std::uint32_t> free_;
};

inline Wrappers& wrappers() {
    static auto* instance = new Wrappers();  // never destroyed, like the arenas
    return *instance;
}

// The C++ part of a Python Value. `weaklist` is the object's list of weak references
// (Python finds it at weaklist_offset<T>, declared in the type's slots): weakref support
// without nanobind's is_weak_referenceable, which would put every Value under the cyclic
// GC. The node forgets this object before the weak references' callbacks run, so a
// callback that reaches the node again gets a new object, never this dying one.
template <class T>
struct PyValue {
    micrograd::Value<T> v;
    PyObject* weaklist = nullptr;
    ~PyValue() {
        PyObject* self = wrappers().get(v.node()->wrapper_id);
        wrappers().remove(v.node()->wrapper_id);
        v.node()->wrapper_id = 0;
        if (weaklist != nullptr) PyObject_ClearWeakRefs(self);
    }
};

template <class T>
struct Names;
template <>
struct Names<double> {
    static constexpr const char* cls = "Value";
    static constexpr const char* dtype = "float64";
};
template <>
struct Names<float> {
    static constexpr const char* cls = "Value32";
    static constexpr const char* dtype = "float32";
};
template <class T>
using Other = std::conditional_t<std::is_same_v<T, double>, float, double>;

template <class T>
inline PyTypeObject* py_type = nullptr;  // set when the class is bound

// Where a Value's `weaklist` is, from the start of the Python object: nanobind keeps the
// C++ object right after its instance header (a PyObject and two 32-bit fields), as
// check_layout() in protocols.cpp verifies when the module loads.
template <class T>
inline constexpr Py_ssize_t weaklist_offset = static_cast<Py_ssize_t>(
    sizeof(PyObject) + 2 * sizeof(std::uint32_t) + offsetof(PyValue<T>, weaklist));

// Slots of Value and Value32 besides their number slots (bindings/value.cpp):
// - tp_members: `__weaklistoffset__`, which makes them weakly referenceable.
// - tp_alloc: nanobind allocates its instances without it, so only object.__new__(Value)
//   calls it; the object it made would be unknown to nanobind, and dropping it aborted the
//   interpreter ("Critical nanobind error"). Refused with a TypeError instead.
template <class T>
inline PyMemberDef value_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, weaklist_offset<T>, Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

template <class T>
PyObject* refuse_alloc(PyTypeObject*, Py_ssize_t) noexcept {
    PyErr_Format(PyExc_TypeError,
                 "%s objects cannot be made by object.__new__(%s) or another type's __new__; "
                 "call %s(data)",
                 Names<T>::cls, Names<T>::cls, Names<T>::cls);
    return nullptr;
}

template <class T>
nb::object wrap(micrograd::Value<T> v) {
    auto* node = v.node();
    if (node->wrapper_id != 0) return nb::borrow(wrappers().get(node->wrapper_id));
    nb::object o = nb::inst_alloc(reinterpret_cast<PyObject*>(py_type<T>));
    // Out of the cyclic GC unless its node has extras, which may hold Python objects
    // (bindings/value.cpp: traverse_slot).
    PyObject_GC_UnTrack(o.ptr());
    const std::uint32_t id = wrappers().add(o.ptr());  // if this throws, o is dropped unready
    new (nb::inst_ptr<PyValue<T>>(o)) PyValue<T>{std::move(v)};
    nb::inst_mark_ready(o);
    node->wrapper_id = id;
    if (node->in_side_table()) PyObject_GC_Track(o.ptr());
    return o;
}

inline std::string py_type_name(nb::handle h) {
    return nb::type_name(h.type()).c_str();
}

// A Python real number as a double: int, float, bool and anything with __float__ or
// __index__ (NumPy scalars, Fraction, Decimal). Returns nullopt for anything else.
inline std::optional<double> as_real(nb::handle h) {
    PyObject* o = h.ptr();
#ifdef Py_LIMITED_API  // the stable ABI (abi3 wheels) has no unchecked accessor
    if (PyFloat_Check(o)) return PyFloat_AsDouble(o);
#else
    if (PyFloat_Check(o)) return PyFloat_AS_DOUBLE(o);
#endif
    if (!PyLong_Check(o) && (!PyNumber_Check(o) || PyComplex_Check(o))) return std::nullopt;
    const double d = PyFloat_AsDouble(o);  // an int too large for a double raises here
    if (d == -1.0 && PyErr_Occurred()) throw nb::python_error();
    return d;
}

// The number operand of a binary op: as_real, except that a sized sequence that is also a
// number (a NumPy array of one or more dimensions) is not one. The op then returns
// NotImplemented and the array's own operator applies it to each item, as it does for
// micrograd's Values: np.array([a, b], dtype=object) * v and v * that array are arrays.
inline std::optional<double> scalar_operand(nb::handle h) {
    PyObject* o = h.ptr();
    if (!PyFloat_Check(o) && !PyLong_Check(o) && PySequence_Check(o)) {
        const Py_ssize_t n = PySequence_Size(o);  // fails for a 0-d array: a scalar
        if (n >= 0) return std::nullopt;
        PyErr_Clear();
    }
    return as_real(h);
}

inline bool is_integer(nb::handle h) {
    return PyLong_Check(h.ptr()) || (PyIndex_Check(h.ptr()) && !PyFloat_Check(h.ptr()));
}

// The TypeError for h where a real number was expected; `what` names the argument, e.g.
// "Value.data".
[[noreturn]] inline void throw_not_real(nb::handle h, const std::string& what) {
    throw nb::type_error((what + " must be a real number (int, float or a NumPy scalar), not '" +
                          py_type_name(h) + "'")
                             .c_str());
}

template <class T>
T real_or_throw(nb::handle h, const std::string& what) {
    if (auto d = as_real(h)) return static_cast<T>(*d);
    throw_not_real(h, what);
}

// The other operand of a binary op: a value of the same precision, or a number (which
// becomes a new leaf, as in micrograd). nullopt means "not ours": return NotImplemented.
template <class T>
std::optional<micrograd::Value<T>> operand(nb::handle h) {
    if (Py_TYPE(h.ptr()) == py_type<T>) return nb::inst_ptr<PyValue<T>>(h)->v;
    if (Py_TYPE(h.ptr()) == py_type<Other<T>>)
        throw nb::type_error((std::string("cannot mix ") + Names<T>::cls + " (" + Names<T>::dtype +
                              ") and " + Names<Other<T>>::cls + " (" + Names<Other<T>>::dtype +
                              ") in one expression; " + "convert one side first, e.g. " +
                              Names<T>::cls + "(x.data)")
                                 .c_str());
    if (auto d = scalar_operand(h)) return micrograd::Value<T>(static_cast<T>(*d));
    return std::nullopt;
}

inline nb::object not_implemented() {
    return nb::borrow(Py_NotImplemented);
}

// A new list of the items of any iterable. Always a copy: the caller may run Python code
// (__float__, attribute lookups) while it walks the items, and that code could change the
// caller's list under it. Errors raised by the iterable itself propagate unchanged.
inline nb::list as_list(nb::handle seq, const std::string& what) {
    PyObject* o = seq.ptr();
    PyObject* l = PySequence_List(o);
    if (l != nullptr) return nb::steal<nb::list>(l);
    // Not iterable at all: say what was expected. Otherwise the iterable's own error (set
    // aside while the type is looked at: no attribute lookup may run with an error set).
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyObject *type, *error, *trace;
        PyErr_Fetch(&type, &error, &trace);
        const bool iterable = PySequence_Check(o) || PyObject_HasAttrString(o, "__iter__");
        PyErr_Restore(type, error, trace);
        if (!iterable) {
            PyErr_Clear();
            throw nb::type_error(
                (what + " must be a list or another iterable, not '" + py_type_name(seq) + "'")
                    .c_str());
        }
    }
    throw nb::python_error();
}

// The list itself, not a copy, where the caller runs no Python code while it walks the
// items (so no one can change the list meanwhile).
inline nb::list borrowed_list(nb::handle seq, const std::string& what) {
    return PyList_Check(seq.ptr()) ? nb::borrow<nb::list>(seq) : as_list(seq, what);
}

// A list's size and borrowed item (unchecked where the ABI allows).
inline Py_ssize_t list_size(PyObject* list) {
#ifdef Py_LIMITED_API
    return PyList_Size(list);
#else
    return PyList_GET_SIZE(list);
#endif
}

inline PyObject* list_item(PyObject* list, Py_ssize_t i) {
#ifdef Py_LIMITED_API
    return PyList_GetItem(list, i);
#else
    return PyList_GET_ITEM(list, i);
#endif
}

// Whether `list` holds exactly `items`, in order (the same objects).
inline bool list_holds(PyObject* list, const std::vector<PyObject*>& items) {
    if (list_size(list) != static_cast<Py_ssize_t>(items.size())) return false;
#ifndef Py_LIMITED_API  // one comparison of the two arrays
    if (!items.empty())
        return std::memcmp(PySequence_Fast_ITEMS(list), items.data(),
                           items.size() * sizeof(PyObject*)) == 0;
#endif
    for (std::size_t i = 0; i < items.size(); ++i)
        if (list_item(list, static_cast<Py_ssize_t>(i)) != items[i]) return false;
    return true;
}

// The value inside h, an item of `what`, borrowed: valid while h lives (TypeError when h
// is not a value of this precision).
template <class T>
const micrograd::Value<T>& item_value(nb::handle h, const std::string& what) {
    if (Py_TYPE(h.ptr()) != py_type<T>)
        throw nb::type_error(
            (what + " must hold " + Names<T>::cls + " objects, not '" + py_type_name(h) + "'")
                .c_str());
    return nb::inst_ptr<PyValue<T>>(h)->v;
}

// A list (or iterable) of values of one precision, as handles (TypeError otherwise).
template <class T>
std::vector<micrograd::Value<T>> values(nb::handle seq, const std::string& what) {
    nb::list items = borrowed_list(seq, what);  // only type checks below
    std::vector<micrograd::Value<T>> out;
    out.reserve(nb::len(items));
    for (nb::handle h : items) out.push_back(item_value<T>(h, what));
    return out;
}

// A list (as_list's copy) of values or numbers. The operands point into the Python
// objects, which `items` keeps alive: use them before it goes.
template <class T>
std::vector<micrograd::Operand<T>> operands(const nb::list& items, const std::string& what) {
    std::vector<micrograd::Operand<T>> out;
    out.reserve(nb::len(items));
    for (nb::handle h : items) {
        if (Py_TYPE(h.ptr()) == py_type<T>) {
            out.push_back({&nb::inst_ptr<PyValue<T>>(h)->v, T(0)});
        } else if (auto d = as_real(h)) {
            out.push_back({nullptr, static_cast<T>(*d)});
        } else {
            throw nb::type_error((what + " must hold " + Names<T>::cls +
                                  " objects or numbers, not '" + py_type_name(h) + "'")
                                     .c_str());
        }
    }
    return out;
}

// Python's object protocols for Value and Value32: copy, deepcopy, pickle (protocols.cpp).
template <class T>
void bind_protocols(nb::class_<PyValue<T>>& c);

// The _op of a node made as Value(data, children, op) (bindings/value.cpp).
template <class T>
std::string custom_op(const micrograd::Node<T>* n);

void bind_values(nb::module_& m);
void bind_nn(nb::module_& m);
void bind_graph(nb::module_& m);

}  // namespace mgpy
