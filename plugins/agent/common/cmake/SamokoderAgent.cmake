# samokoder_add_agent(<name> SOURCES <src>... [LINK_LIBRARIES <lib>...])
#
# Builds the agent plugin agent_<name>.so from the calling folder (plugins/agent/<name>): its sources,
# the agent common library, and every file of its prompts/ folder compiled in (PromptBook's built-in
# files). Editing a prompt re-runs the configure step, so the plugin is rebuilt with it.
include_guard(GLOBAL)

function(samokoder_add_agent name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;LINK_LIBRARIES")
  # Found from the function's own folder: a variable set when this file was included would belong to
  # agent/common's directory scope and be empty in the agents' folders that call it.
  set(embed_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_prompts.cmake)
  set(target agent_${name})
  file(GLOB prompt_files LIST_DIRECTORIES false CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/prompts/*.md ${CMAKE_CURRENT_SOURCE_DIR}/prompts/*.json)
  list(SORT prompt_files)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/${target}_prompts.cpp)
  add_custom_command(OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} "-DOUTPUT=${generated}" "-DFILES=${prompt_files}"
            -P ${embed_script}
    DEPENDS ${prompt_files} ${embed_script}
    COMMENT "Compiling the prompts of agent.${name} in"
    VERBATIM)
  samokoder_add_plugin(${target} SOURCES ${ARG_SOURCES} ${generated}
                       LINK_LIBRARIES samokoder_agent_common ${ARG_LINK_LIBRARIES})
  if(TARGET samokoder_warnings)
    target_link_libraries(${target} PRIVATE samokoder_warnings)
  endif()
endfunction()

# samokoder_agent_embed_folder(<target> FUNCTION <name> DIR <dir>)
#
# Compiles every file under <dir> (recursively) into <target> as `std::span<const EmbeddedFile>
# samokoder::agent_common::<name>() noexcept`, each named by its path relative to <dir>
# ("node_http/server.js"), in path order. The agent declares the function itself. For data an agent
# ships besides its prompts, such as project templates.
function(samokoder_agent_embed_folder target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "FUNCTION;DIR" "")
  set(embed_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_prompts.cmake)
  file(GLOB_RECURSE embedded LIST_DIRECTORIES false CONFIGURE_DEPENDS ${ARG_DIR}/*)
  list(SORT embedded)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/${target}_${ARG_FUNCTION}.cpp)
  add_custom_command(OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} "-DOUTPUT=${generated}" "-DFILES=${embedded}" "-DFUNCTION=${ARG_FUNCTION}"
            "-DBASE=${ARG_DIR}" -P ${embed_script}
    DEPENDS ${embedded} ${embed_script}
    COMMENT "Compiling ${ARG_DIR} into ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE ${generated})
endfunction()
