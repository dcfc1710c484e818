// Tests of entmax/sparsemax.hpp: the shared row-map properties (row_map_checks.hpp) for sparsemax.
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include "row_map_checks.hpp"

ENTMAX_ROW_MAP_TESTS(entmax_test::Map::sparsemax)
