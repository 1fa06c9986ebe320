// tests/cpp/main.cpp: doctest's main(), shared by every C++ test executable.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
