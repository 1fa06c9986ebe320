// bindings/protocols.cpp: copy, deepcopy and pickle of Value and Value32 (weak references:
// common.hpp's PyValue).
#include <stdexcept>

#include "common.hpp"

namespace mgpy {
namespace {

using namespace nb::literals;

// A pickled value is plain data, tagged and versioned: (FORMAT, VERSION, dtype, kind, ...)
// where kind is "leaf" (then grad, label) or "graph" (then the arrays of a FlatGraph). The
// data of the value itself is the argument of the class call that pickle records.
constexpr const char* FORMAT = "micrograd_cpp.Value";
constexpr long VERSION = 1;

template <class T>
using Handle = micrograd::Value<T>;

template <class T>
PyValue<T>& self_of(nb::handle h) {
    return *nb::inst_ptr<PyValue<T>>(h);
}

// id(o), as copy.deepcopy's memo keys objects.
nb::object id_of(PyObject* o) {
    return nb::steal(PyLong_FromVoidPtr(o));
}

// The Python object of a node, or nullptr when it has none.
template <class T>
PyObject* object_of(const micrograd::Node<T>* n) {
    return n->wrapper_id != 0 ? wrappers().get(n->wrapper_id) : nullptr;
}

// nanobind keeps a Value's C++ object right after its instance header; weaklist_offset
// relies on that, so check it once, on a real instance, when the module loads.
template <class T>
void check_layout() {
    nb::object o = wrap<T>(Handle<T>(T(0)));
    const auto offset = reinterpret_cast<char*>(&self_of<T>(o)) - reinterpret_cast<char*>(o.ptr());
    if (offset + static_cast<Py_ssize_t>(offsetof(PyValue<T>, weaklist)) != weaklist_offset<T>)
        throw std::runtime_error(std::string("micrograd_cpp: nanobind's instance layout is not "
                                             "the one weak references of ") +
                                 Names<T>::cls + " were built for");
}

// Labels of the nodes a FlatGraph copies, as (index, label): read through the `label`
// property, only for nodes flagged as having one.
template <class T>
nb::list read_labels(const micrograd::FlatGraph<T>& g) {
    nb::list out;
    for (std::size_t j = 0; j < g.source.size(); ++j) {
        if (!g.source[j]->in_side_table()) continue;
        nb::object label = wrap<T>(Handle<T>::from_node(g.source[j])).attr("label");
        if (nb::len(label) != 0) out.append(nb::make_tuple(j, label));
    }
    return out;
}

// Sets the labels read_labels() read (or set_state() checked) on the copies.
template <class T>
void write_labels(const std::vector<Handle<T>>& nodes, nb::handle labels) {
    for (nb::handle item : labels)
        wrap<T>(nodes[nb::cast<std::size_t>(item[0])]).attr("label") = item[1];
}

// Points the Python object `self` (a new value that nothing else refers to) at `root`: the
// object of a rebuilt graph's root.
template <class T>
void rebind(nb::handle self, Handle<T> root) {
    PyValue<T>& s = self_of<T>(self);
    const std::uint32_t id = s.v.node()->wrapper_id;
    s.v.node()->wrapper_id = 0;
    s.v = std::move(root);
    s.v.node()->wrapper_id = id;
}

template <class T>
nb::object leaf_state(const Handle<T>& v, nb::handle self) {
    return nb::make_tuple(FORMAT, VERSION, Names<T>::dtype, "leaf", static_cast<double>(v.grad()),
                          self.attr("label"));
}

template <class T>
nb::object graph_state(const micrograd::FlatGraph<T>& g) {
    nb::list names, shared;
    std::vector<std::uint8_t> ops;
    std::vector<std::string> keys;
    for (micrograd::Op op : g.ops) {
        const std::string key = micrograd::op_key(op);
        std::size_t i = 0;
        while (i < keys.size() && keys[i] != key) ++i;
        if (i == keys.size()) {
            keys.push_back(key);
            names.append(nb::str(key.c_str()));
        }
        ops.push_back(static_cast<std::uint8_t>(i));
    }
    for (auto* n : g.external) shared.append(wrap<T>(Handle<T>::from_node(n)));
    auto bytes = [](const std::string& b) { return nb::bytes(b.data(), b.size()); };
    return nb::make_tuple(FORMAT, VERSION, Names<T>::dtype, "graph", nb::tuple(names),
                          bytes(micrograd::to_bytes(ops)), bytes(micrograd::to_bytes(g.inputs)),
                          bytes(micrograd::to_bytes(g.data)), bytes(micrograd::to_bytes(g.grad)),
                          bytes(micrograd::to_bytes(g.exponents)),
                          bytes(micrograd::to_bytes(g.int_exps)), nb::tuple(read_labels(g)),
                          nb::tuple(shared));
}

// Value.__reduce__: (cls, (data,), state). A leaf's state is its grad and label; an
// interior value's is its whole graph, with the leaves that have a Python object (a
// model's parameters, the graph's inputs) kept as those objects, so that pickling a model
// with a graph built from it keeps them shared.
template <class T>
nb::object reduce(nb::handle self) {
    const Handle<T>& v = self_of<T>(self).v;
    nb::object args = nb::make_tuple(static_cast<double>(v.data()));
    if (v.op() == micrograd::Op::leaf)
        return nb::make_tuple(nb::handle(self.type()), args, leaf_state<T>(v, self));
    auto g = micrograd::flatten(v.node(), [](const micrograd::Node<T>* n) {
        return n->op == micrograd::Op::leaf && n->wrapper_id != 0;
    });
    return nb::make_tuple(nb::handle(self.type()), args, graph_state(g));
}

[[noreturn]] void bad_state(const std::string& what) {
    throw nb::value_error(("cannot unpickle this value: " + what).c_str());
}

template <class U>
std::vector<U> array_of(nb::handle item, const char* what) {
    if (!nb::isinstance<nb::bytes>(item)) bad_state(std::string(what) + " is not bytes");
    nb::bytes b = nb::borrow<nb::bytes>(item);
    return micrograd::from_bytes<U>(b.c_str(), b.size(), what);
}

// Value.__setstate__: checks the state (anything malformed is a ValueError, nothing is
// changed), then sets grad and label, or builds the graph and makes self its root.
template <class T>
void set_state(nb::handle self, nb::handle state) {
    if (!nb::isinstance<nb::tuple>(state) || nb::len(state) < 4)
        bad_state("its state is not a micrograd_cpp Value's");
    nb::tuple s = nb::borrow<nb::tuple>(state);
    if (!nb::isinstance<nb::str>(s[0]) || nb::cast<std::string>(s[0]) != FORMAT)
        bad_state("its state is not a micrograd_cpp Value's");
    if (!PyLong_CheckExact(s[1].ptr()) || nb::cast<long>(s[1]) != VERSION)
        bad_state("it was written in format version " + nb::cast<std::string>(nb::repr(s[1])) +
                  "; this micrograd_cpp reads version " + std::to_string(VERSION));
    if (!nb::isinstance<nb::str>(s[2]) || nb::cast<std::string>(s[2]) != Names<T>::dtype)
        bad_state(std::string("it holds ") + nb::cast<std::string>(nb::repr(s[2])) + " data, not " +
                  Names<T>::dtype);
    const std::string kind = nb::isinstance<nb::str>(s[3]) ? nb::cast<std::string>(s[3]) : "";
    PyValue<T>& target = self_of<T>(self);
    if (kind == "leaf" && nb::len(s) == 6) {
        if (!PyFloat_CheckExact(s[4].ptr()) || !nb::isinstance<nb::str>(s[5]))
            bad_state("its grad is not a float or its label not a str");
        self.attr("label") = s[5];  // the property's checks, before grad changes
        target.v.set_grad(static_cast<T>(PyFloat_AsDouble(s[4].ptr())));
        return;
    }
    if (kind != "graph" || nb::len(s) != 13) bad_state("its state is not a micrograd_cpp Value's");
    if (target.v.op() != micrograd::Op::leaf || target.v.node()->refs != 1)
        throw nb::type_error(
            "__setstate__ with a graph applies only to a new value (as pickle "
            "makes): this one is already part of a graph or held elsewhere");
    micrograd::FlatGraph<T> g;
    try {
        if (!nb::isinstance<nb::tuple>(s[4])) bad_state("its op names are not a tuple");
        std::vector<micrograd::Op> names;
        for (nb::handle name : s[4]) {
            if (!nb::isinstance<nb::str>(name)) bad_state("an op name is not a str");
            names.push_back(micrograd::op_from_key(nb::cast<std::string>(name)));
        }
        for (std::uint8_t i : array_of<std::uint8_t>(s[5], "ops")) {
            if (i >= names.size()) bad_state("an op is not one of its op names");
            g.ops.push_back(names[i]);
        }
        g.inputs = array_of<std::uint32_t>(s[6], "inputs");
        g.data = array_of<T>(s[7], "data");
        g.grad = array_of<T>(s[8], "grad");
        g.exponents = array_of<T>(s[9], "exponents");
        g.int_exps = array_of<std::uint8_t>(s[10], "integer exponents");
        if (!nb::isinstance<nb::tuple>(s[11]) || !nb::isinstance<nb::tuple>(s[12]))
            bad_state("its labels or shared values are not tuples");
        for (nb::handle h : s[11]) {
            if (!nb::isinstance<nb::tuple>(h) || nb::len(h) != 2 || !PyLong_Check(h[0].ptr()) ||
                !nb::isinstance<nb::str>(h[1]))
                bad_state("a label is not an (index, str) pair");
            const Py_ssize_t j = PyLong_AsSsize_t(h[0].ptr());
            if (j < 0 || static_cast<std::size_t>(j) >= g.ops.size()) {
                PyErr_Clear();
                bad_state("a label names no node");
            }
            Py_ssize_t size = 0;
            if (PyUnicode_AsUTF8AndSize(h[1].ptr(), &size) == nullptr) throw nb::python_error();
        }
        for (nb::handle h : s[12]) {
            if (Py_TYPE(h.ptr()) != py_type<T>)
                bad_state(std::string("a shared value is not a ") + Names<T>::cls);
            g.external.push_back(self_of<T>(h).v.node());
        }
        std::vector<Handle<T>> nodes = micrograd::rebuild(g);
        rebind<T>(self, nodes.back());
        write_labels<T>(nodes, s[11]);
    } catch (const std::invalid_argument& e) {
        bad_state(e.what());
    }
}

// copy.copy: a new node with the same op, inputs, data, grad and label (a leaf: a new leaf).
template <class T>
nb::object shallow_copy(nb::handle self) {
    micrograd::Node<T>* root = self_of<T>(self).v.node();
    auto g = micrograd::flatten(root, [root](const micrograd::Node<T>* n) { return n != root; });
    std::vector<Handle<T>> nodes = micrograd::rebuild(g);
    write_labels<T>(nodes, nb::tuple(read_labels(g)));
    return wrap<T>(nodes.back());
}

// copy.deepcopy: the whole graph below self, copied once per node. A node whose Python
// object is already in `memo` (copied earlier in the same deepcopy) becomes that copy;
// every copied node that has a Python object gets its copy's object in `memo`, so that
// deepcopy([x, y]) of values of one graph gives values of one new graph.
template <class T>
nb::object deep_copy(nb::handle self, nb::dict memo) {
    micrograd::Node<T>* root = self_of<T>(self).v.node();
    auto in_memo = [&memo](const micrograd::Node<T>* n) {
        PyObject* o = object_of(n);
        return o != nullptr && memo.contains(id_of(o));
    };
    auto g = micrograd::flatten(root, in_memo);
    for (auto*& n : g.external) {
        nb::object copy = memo[id_of(object_of(n))];
        if (Py_TYPE(copy.ptr()) != py_type<T>)
            throw nb::type_error("deepcopy: the memo maps a value to something else");
        n = self_of<T>(copy).v.node();
    }
    std::vector<Handle<T>> nodes = micrograd::rebuild(g);
    write_labels<T>(nodes, nb::tuple(read_labels(g)));
    nb::object keep = memo.attr("setdefault")(id_of(memo.ptr()), nb::list());
    for (std::size_t j = 0; j < nodes.size(); ++j) {
        PyObject* original = object_of(g.source[j]);
        if (original == nullptr) continue;
        memo[id_of(original)] = wrap<T>(nodes[j]);
        keep.attr("append")(nb::handle(original));
    }
    return wrap<T>(nodes.back());
}

}  // namespace

template <class T>
void bind_protocols(nb::class_<PyValue<T>>& c) {
    check_layout<T>();
    const std::string cls = Names<T>::cls;
    c.def("__reduce__", &reduce<T>,
          nb::sig(("def __reduce__(self) -> tuple[type[" + cls +
                   "], tuple[float], tuple[object, "
                   "...]]")
                      .c_str()),
          "Pickle support: plain data (no code), versioned and checked when loaded. A leaf\n"
          "keeps data, grad and label; any other value its whole graph below it.");
    c.def("__setstate__", &set_state<T>, "state"_a,
          nb::sig("def __setstate__(self, state: tuple[object, ...], /) -> None"),
          "Unpickling: the state __reduce__ made (ValueError if it is malformed).");
    c.def("__copy__", &shallow_copy<T>, nb::sig(("def __copy__(self) -> " + cls).c_str()),
          "copy.copy: a new node with the same op, inputs, data, grad and label.");
    c.def("__deepcopy__", &deep_copy<T>, "memo"_a,
          nb::sig(("def __deepcopy__(self, memo: dict[int, object], /) -> " + cls).c_str()),
          "copy.deepcopy: a copy of the whole graph below this value (any depth), sharing\n"
          "nothing with it; values copied in the same deepcopy stay one graph.");
}

template void bind_protocols<double>(nb::class_<PyValue<double>>&);
template void bind_protocols<float>(nb::class_<PyValue<float>>&);

}  // namespace mgpy
