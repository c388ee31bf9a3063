# Bare-metal Cortex-M with arm-none-eabi-gcc and newlib. Choose the core with LSTM_CORTEX_M_CPU_FLAGS
# (default Cortex-M4F, hard float):
#   cmake -S . -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-none-eabi.cmake -DCMAKE_BUILD_TYPE=MinSizeRel
#   cmake -S . -B build-m0 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-none-eabi.cmake \
#         "-DLSTM_CORTEX_M_CPU_FLAGS=-mcpu=cortex-m0 -mthumb -mfloat-abi=soft"
# Only the static library is built (CMAKE_SYSTEM_NAME Generic); link it into the firmware with its
# startup code and linker script (examples/cortex_m4).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY) # no startup code for test programs
set(LSTM_CORTEX_M_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
    CACHE STRING "CPU flags of the Cortex-M core")
set(CMAKE_C_FLAGS_INIT "${LSTM_CORTEX_M_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
