# samokoder_add_plugin(<target> SOURCES <src>... [LINK_LIBRARIES <lib>...])
#
# Builds a Samokoder plugin as a MODULE library named <target>.so with the flags the kernel's loader
# depends on (docs/sdk.md explains each):
#   -fvisibility=hidden -fvisibility-inlines-hidden  nothing leaks into the dynamic symbol table
#   -fno-gnu-unique                                  no STB_GNU_UNIQUE symbol pins the library in memory
#   -Wl,--version-script                             exactly one exported symbol: samokoder_plugin_entry
#   -Wl,-z,defs                                      every symbol resolves at link time, never from the kernel
#   -Wl,--exclude-libs,ALL                           symbols of static libraries stay private
include_guard(GLOBAL)

function(samokoder_add_plugin target)
  # Resolved here, not at include time: callers live in other directory scopes.
  set(version_script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/plugin.map")
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;LINK_LIBRARIES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "samokoder_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE SamokoderSDK::sdk ${ARG_LINK_LIBRARIES})
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    LINK_DEPENDS "${version_script}")
  target_compile_options(${target} PRIVATE -fno-gnu-unique)
  target_link_options(${target} PRIVATE
    -Wl,-z,defs
    -Wl,--exclude-libs,ALL
    "-Wl,--version-script=${version_script}")
  set_property(GLOBAL APPEND PROPERTY SAMOKODER_PLUGIN_TARGETS ${target})
endfunction()
