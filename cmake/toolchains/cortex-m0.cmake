# Cortex-M0 (Thumb-1, soft float): see arm-none-eabi.cmake.
set(LSTM_CORTEX_M_CPU_FLAGS "-mcpu=cortex-m0 -mthumb -mfloat-abi=soft" CACHE STRING "")
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
