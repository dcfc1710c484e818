# Finds Eigen 3.4 and xsimd (>= 8.1) as imported targets. Used by the build and by the
# installed package config alike, so a consumer finds exactly what the build found.
include(GNUInstallDirs)
include(CMakeFindDependencyMacro)

if(NOT TARGET Eigen3::Eigen)
  find_dependency(Eigen3 3.3 NO_MODULE)
endif()

if(NOT TARGET xsimd)
  find_dependency(xsimd 8.1)
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
  find_dependency(Threads)
endif()
