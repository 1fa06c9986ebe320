// bindings/graph.cpp: micrograd_cpp.Graph, a captured graph replayed in C++ (graph.hpp).
#include <nanobind/ndarray.h>

#include <variant>

#include "common.hpp"

namespace mgpy {
namespace {

using namespace nb::literals;

// One Python class for both precisions: the graph of a Value or of a Value32. It holds
// C++ handles only (no Python object), so it needs no part in Python's cyclic GC.
class PyGraph {
public:
    template <class T>
    explicit PyGraph(micrograd::Graph<T> g) : g_(std::move(g)) {}

    template <class F>
    decltype(auto) visit(F&& f) {
        return std::visit(std::forward<F>(f), g_);
    }

private:
    std::variant<micrograd::Graph<double>, micrograd::Graph<float>> g_;
};

template <class T>
micrograd::Graph<T> capture(nb::handle root, nb::handle inputs) {
    std::vector<micrograd::Value<T>> in;
    if (!inputs.is_none()) {
        nb::list items = borrowed_list(inputs, "Graph: inputs");  // only type checks below
        for (std::size_t j = 0; j < nb::len(items); ++j)
            in.push_back(item_value<T>(items[j], "Graph: inputs[" + std::to_string(j) + "]"));
    }
    try {
        return micrograd::Graph<T>(nb::inst_ptr<PyValue<T>>(root)->v, std::move(in));
    } catch (const micrograd::Unreplayable& e) {
        const auto* node = static_cast<const micrograd::Node<T>*>(e.node);
        throw nb::value_error(("Graph: the graph holds a node of the custom op '" +
                               custom_op(node) +
                               "' (made as Value(data, children, op) with a Python _backward), "
                               "which has no C++ forward to replay; write the op with Value's "
                               "own ops to replay it, or rebuild the graph at every step")
                                  .c_str());
    }
}

// NumPy's name of a DLPack dtype, for errors.
std::string dtype_name(nb::dlpack::dtype t) {
    using Code = nb::dlpack::dtype_code;
    const char* kind = t.code == static_cast<std::uint8_t>(Code::Int)       ? "int"
                       : t.code == static_cast<std::uint8_t>(Code::UInt)    ? "uint"
                       : t.code == static_cast<std::uint8_t>(Code::Float)   ? "float"
                       : t.code == static_cast<std::uint8_t>(Code::Complex) ? "complex"
                       : t.code == static_cast<std::uint8_t>(Code::Bool)    ? "bool"
                                                                            : "dtype code ";
    return kind + std::to_string(t.bits);
}

// The elements of a float64 or float32 array of any shape and strides, in C order.
template <class T, class From>
void read_array(const nb::ndarray<nb::ro>& a, std::vector<T>& out) {
    const auto* base = static_cast<const From*>(a.data());
    const std::size_t dims = a.ndim();
    std::vector<std::size_t> index(dims, 0);
    for (std::size_t done = 0; done < out.size(); ++done) {
        std::int64_t offset = 0;
        for (std::size_t d = 0; d < dims; ++d)
            offset += static_cast<std::int64_t>(index[d]) * a.stride(d);
        out[done] = static_cast<T>(base[offset]);
        for (std::size_t d = dims; d-- > 0;) {  // the next index, last axis fastest
            if (++index[d] < a.shape(d)) break;
            index[d] = 0;
        }
    }
}

// set_inputs' values: a float64/float32 array (read in C++), or any iterable of numbers.
// Every check happens before anything is written.
template <class T>
std::vector<T> input_values(nb::handle values, std::size_t expected) {
    auto count_error = [expected](std::size_t got) {
        return nb::value_error(("Graph.set_inputs: got " + std::to_string(got) +
                                " values for a graph with " + std::to_string(expected) + " inputs")
                                   .c_str());
    };
    nb::ndarray<nb::ro> array;
    if (nb::ndarray_check(values) && nb::try_cast(values, array, false)) {
        const bool f64 = array.dtype() == nb::dtype<double>();
        if (!f64 && array.dtype() != nb::dtype<float>())
            throw nb::type_error(("Graph.set_inputs: an array must hold float64 or float32, "
                                  "not " +
                                  dtype_name(array.dtype()) + " (convert it: a.astype(float))")
                                     .c_str());
        if (array.size() != expected) throw count_error(array.size());
        std::vector<T> out(expected);
        if (f64)
            read_array<T, double>(array, out);
        else
            read_array<T, float>(array, out);
        return out;
    }
    nb::list items = as_list(values, "Graph.set_inputs: values");
    if (nb::len(items) != expected) throw count_error(nb::len(items));
    std::vector<T> out;
    out.reserve(expected);
    for (std::size_t j = 0; j < expected; ++j) {
        nb::handle item = items[j];
        const std::optional<double> x = as_real(item);
        if (!x)  // the message is built only here: a per-item string costs more than the rest
            real_or_throw<T>(item, "Graph.set_inputs: values[" + std::to_string(j) + "]");
        out.push_back(static_cast<T>(*x));
    }
    return out;
}

// Runs a replay; Ctrl-C's KeyboardInterrupt stops it as it stops backward().
template <class F>
void replay(F&& f) {
    try {
        f();
    } catch (const micrograd::Interrupted&) {
        throw nb::python_error();
    }
}

template <class G>
using Scalar = typename std::decay_t<G>::scalar_type;

}  // namespace

void bind_graph(nb::module_& m) {
    nb::class_<PyGraph>(
        m, "Graph",
        "The graph reachable from ``root``, captured once as a flat program and replayed in "
        "C++.\n\n"
        "``forward()`` recomputes every interior node's data from the current data of every leaf\n"
        "(parameters, inputs, constants), ``backward()`` is ``root.backward()`` on a freshly\n"
        "built graph; both are bit for bit what rebuilding the same expression gives, and every\n"
        "Value you hold shows the new numbers. ``inputs``: leaves of the graph that\n"
        "``set_inputs()`` writes, in order.\n\n"
        "A replay sees the structure that was captured: branches taken on ``.data`` while the\n"
        "graph was built, Python numbers computed from data (now constants), and the batch size\n"
        "and model shape are frozen. Build and capture again when they change.")
        .def(
            "__init__",
            [](PyGraph* self, nb::handle root, nb::handle inputs) {
                if (Py_TYPE(root.ptr()) == py_type<double>)
                    new (self) PyGraph(capture<double>(root, inputs));
                else if (Py_TYPE(root.ptr()) == py_type<float>)
                    new (self) PyGraph(capture<float>(root, inputs));
                else
                    throw nb::type_error(
                        ("Graph: root must be a Value or Value32, not '" + py_type_name(root) + "'")
                            .c_str());
            },
            "root"_a, "inputs"_a.none() = nb::none(),
            nb::sig("def __init__(self, root: Value | Value32, inputs: "
                    "collections.abc.Iterable[Value | Value32] | None = None) -> None"),
            "Capture the graph of ``root``. ``inputs``: distinct leaves of it, in the order\n"
            "``set_inputs()`` writes them (ValueError naming the position of one that is not).")
        .def(
            "forward",
            [](PyGraph& self) { self.visit([](auto& g) { replay([&] { g.forward(); }); }); },
            "Recompute every interior node's data from the leaves' current data (and reset its\n"
            "grad to 0, as in a freshly built graph). Ctrl-C stops it with KeyboardInterrupt,\n"
            "as it stops ``backward()``: the nodes it reached hold their new data, the others\n"
            "their old (run forward() again).")
        .def(
            "backward",
            [](PyGraph& self) { self.visit([](auto& g) { replay([&] { g.backward(); }); }); },
            "``root.backward()`` as on a freshly built graph: interior grads start from 0, the\n"
            "root's from 1, and leaves' grads accumulate (reset them with ``zero_grad()``). Uses\n"
            "the data of the last ``forward()`` (or of the capture). Ctrl-C stops it with\n"
            "KeyboardInterrupt, as it stops ``backward()``: the interior nodes it reached hold\n"
            "their new grads, the others and the leaves their old (run backward() again).")
        .def(
            "set_inputs",
            [](PyGraph& self, nb::handle values) {
                self.visit([&](auto& g) {
                    using T = Scalar<decltype(g)>;
                    const std::vector<T> v = input_values<T>(values, g.inputs().size());
                    g.set_inputs(v.data(), v.size());
                });
            },
            "values"_a,
            nb::sig("def set_inputs(self, values: collections.abc.Iterable[typing.SupportsFloat]) "
                    "-> None"),
            "Write ``values`` into the inputs' data, in order: a float64 or float32 NumPy array\n"
            "of any shape (read in C order, in C++) or any iterable of numbers. A wrong length or\n"
            "type raises ValueError or TypeError and changes nothing.")
        .def(
            "check",
            [](PyGraph& self) {
                return self.visit([](auto& g) { return static_cast<double>(g.check()); });
            },
            "Recompute every interior node from its inputs one node at a time, as the eager ops\n"
            "do, and return the largest difference from the data it holds (0.0 after a replay;\n"
            "inf where only one is nan). A debugging aid: it changes nothing.")
        .def(
            "__len__", [](PyGraph& self) { return self.visit([](auto& g) { return g.size(); }); },
            "The number of nodes in the graph, leaves included (a fused neuron is one).")
        .def_prop_ro(
            "root",
            [](PyGraph& self) {
                return self.visit([](auto& g) { return wrap<Scalar<decltype(g)>>(g.root()); });
            },
            nb::sig("def root(self) -> Value | Value32"), "The Value the graph was captured from.")
        .def_prop_ro(
            "inputs",
            [](PyGraph& self) {
                return self.visit([](auto& g) {
                    nb::list out;
                    for (const auto& v : g.inputs()) out.append(wrap<Scalar<decltype(g)>>(v));
                    return out;
                });
            },
            nb::sig("def inputs(self) -> list[Value | Value32]"),
            "The leaves ``set_inputs()`` writes, in order.")
        .def_prop_ro(
            "dtype",
            [](PyGraph& self) {
                return self.visit([](auto& g) { return Names<Scalar<decltype(g)>>::dtype; });
            },
            "'float64' for a graph of Values, 'float32' for one of Value32s.")
        .def("__repr__", [](PyGraph& self) {
            return self.visit([](auto& g) {
                return "Graph(nodes=" + std::to_string(g.size()) +
                       ", inputs=" + std::to_string(g.inputs().size()) +
                       ", dtype=" + Names<Scalar<decltype(g)>>::dtype + ")";
            });
        });
}

}  // namespace mgpy
