# entmax_project_target(<target>): warnings, -Werror on request and the arch flags for this
# project's own tests, benchmarks and examples. Never applied to the INTERFACE target.
function(entmax_project_target target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion)
  if(ENTMAX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 false positives with AVX-512 intrinsics (GCC bug 105593).
      target_compile_options(${target} PRIVATE
        -Wno-error=uninitialized -Wno-error=maybe-uninitialized)
    endif()
  endif()
  if(ENTMAX_ARCH_FLAGS)
    separate_arguments(_flags UNIX_COMMAND "${ENTMAX_ARCH_FLAGS}")
    target_compile_options(${target} PRIVATE ${_flags})
  endif()
  target_link_libraries(${target} PRIVATE entmax::entmax)
endfunction()
