# Cortex-M4F (hard float, FPv4-SP): see arm-none-eabi.cmake.
set(LSTM_CORTEX_M_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16" CACHE STRING "")
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
