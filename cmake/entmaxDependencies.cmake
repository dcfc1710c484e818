# Finds Eigen (>= 3.3) and xsimd (>= 8.1) as imported targets, and Threads. Used by the build and
# by the installed package config alike, so a consumer finds exactly what the build found.
# Inside find_package(entmax) failures are reported through find_dependency (entmax_FOUND is
# then false); in the build itself a missing dependency is a configure error.
include(CMakeFindDependencyMacro)

macro(_entmax_find_dependency)
  if(CMAKE_FIND_PACKAGE_NAME STREQUAL "entmax")
    find_dependency(${ARGN})
  else()
    find_package(${ARGN} REQUIRED)
  endif()
endmacro()

if(NOT TARGET Eigen3::Eigen)
  _entmax_find_dependency(Eigen3 3.3 NO_MODULE)
endif()

if(NOT TARGET xsimd)
  _entmax_find_dependency(xsimd 8.1)
endif()

# Debian's xsimd 8.1 target lists `xtl` in its link interface without finding it. xsimd
# does not need xtl for anything this library uses, so stand in an empty target when absent.
if(NOT TARGET xtl)
  find_package(xtl QUIET)
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
endif()

# The attention operator runs its own worker threads.
if(NOT TARGET Threads::Threads)
  _entmax_find_dependency(Threads)
endif()
