// bindings/module.cpp: the nanobind module micrograd_cpp._core.
#include <cstdlib>

#include "common.hpp"

namespace nb = nanobind;

namespace {

using namespace nb::literals;

template <class T>
nb::dict stats_dict() {
    const micrograd::ArenaStats s = micrograd::arena_stats<T>();
    nb::dict d;
    d["live"] = s.live;
    d["capacity"] = s.capacity;
    d["bytes"] = s.bytes;
    d["node_size"] = s.node_size;
    return d;
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "C++ core of micrograd_cpp: scalar reverse-mode autograd on an arena of nodes.";
    // nanobind reports instances still alive when the interpreter exits as "leaked". Values
    // alive at exit are normal for users (module globals, a method patched onto Value whose
    // globals hold values: Python does not clear them all before nanobind looks), and users
    // would file the report as a bug; so it is on only with MICROGRAD_CPP_LEAK_WARNINGS=1,
    // which tests/test_leaks.py sets to look for real leaks.
    const char* warnings = std::getenv("MICROGRAD_CPP_LEAK_WARNINGS");
    nb::set_leak_warnings(warnings != nullptr && std::string(warnings) == "1");
    mgpy::bind_values(m);
    mgpy::bind_nn(m);
    mgpy::bind_graph(m);
    m.def(
        "arena_stats",
        [](const std::string& dtype) {
            if (dtype == "float64") return stats_dict<double>();
            if (dtype == "float32") return stats_dict<float>();
            throw nb::value_error(
                ("arena_stats: dtype must be 'float64' or 'float32', not '" + dtype + "'").c_str());
        },
        "dtype"_a = "float64",
        nb::sig("def arena_stats(dtype: str = 'float64') "
                "-> dict[str, int]"),
        "Memory held by the node arena of one precision, as a dict: 'live' (nodes alive),\n"
        "'capacity' (node slots obtained from the system), 'bytes' (their size in bytes) and\n"
        "'node_size' (bytes per node). Freed slots are reused before capacity grows. A fused\n"
        "neuron's node is counted in 'live' but kept beside its arrays, outside the slots.");
}
