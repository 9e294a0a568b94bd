# samokoder_add_agent(<name> SOURCES <src>... [LINK_LIBRARIES <lib>...])
#
# Builds the agent plugin agent_<name>.so from the calling folder (plugins/agent/<name>): its sources,
# the agent common library, and every file of its prompts/ folder compiled in (PromptBook's built-in
# files). Editing a prompt re-runs the configure step, so the plugin is rebuilt with it.
include_guard(GLOBAL)

# A cache entry, not a plain variable: this file is included from agent/common's folder, and the agents
# that call samokoder_add_agent live in sibling folders, where a directory-scoped variable is empty.
set(SAMOKODER_AGENT_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_prompts.cmake CACHE INTERNAL
    "The script that compiles an agent's prompts in")

function(samokoder_add_agent name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;LINK_LIBRARIES")
  set(target agent_${name})
  file(GLOB prompt_files LIST_DIRECTORIES false CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/prompts/*.md ${CMAKE_CURRENT_SOURCE_DIR}/prompts/*.json)
  list(SORT prompt_files)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/${target}_prompts.cpp)
  add_custom_command(OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} "-DOUTPUT=${generated}" "-DFILES=${prompt_files}"
            -P ${SAMOKODER_AGENT_EMBED_SCRIPT}
    DEPENDS ${prompt_files} ${SAMOKODER_AGENT_EMBED_SCRIPT}
    COMMENT "Compiling the prompts of agent.${name} in"
    VERBATIM)
  samokoder_add_plugin(${target} SOURCES ${ARG_SOURCES} ${generated}
                       LINK_LIBRARIES samokoder_agent_common ${ARG_LINK_LIBRARIES})
  if(TARGET samokoder_warnings)
    target_link_libraries(${target} PRIVATE samokoder_warnings)
  endif()
endfunction()
