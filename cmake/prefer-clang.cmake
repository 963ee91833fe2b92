# ggml's AMX kernels are miscompiled by GCC 12 (the tile configuration stores before ldtilecfg
# are dropped, so the first tile instruction faults). Prefer clang when the caller has not chosen
# a compiler. Include before project(): the compiler is fixed there.
if (NOT DEFINED ENV{CC} AND NOT DEFINED ENV{CXX} AND NOT CMAKE_C_COMPILER AND NOT CMAKE_CXX_COMPILER)
    find_program(PREFERRED_CLANG NAMES clang-16 clang-17 clang-18 clang-19 clang-20 clang)
    find_program(PREFERRED_CLANGXX NAMES clang++-16 clang++-17 clang++-18 clang++-19 clang++-20 clang++)
    if (PREFERRED_CLANG AND PREFERRED_CLANGXX)
        set(CMAKE_C_COMPILER "${PREFERRED_CLANG}")
        set(CMAKE_CXX_COMPILER "${PREFERRED_CLANGXX}")
    endif()
endif()
