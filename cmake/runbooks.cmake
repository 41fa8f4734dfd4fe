# Runbooks compiled into the binary: runbooks/*.yaml becomes a generated C
# file (runbook_embedded[] in lib/runbook.h). The glob re-runs when a file is
# added or removed; the custom command re-runs when one changes.
file(GLOB ST_RUNBOOK_FILES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/runbooks/*.yaml")
set(ST_RUNBOOKS_C "${ST_GENERATED_DIR}/runbooks_embedded.c")
add_custom_command(
  OUTPUT "${ST_RUNBOOKS_C}"
  COMMAND ${CMAKE_COMMAND} -DSRC_DIR=${CMAKE_SOURCE_DIR} -DDST=${ST_RUNBOOKS_C}
          -P ${CMAKE_SOURCE_DIR}/cmake/embed_runbooks.cmake
  DEPENDS ${ST_RUNBOOK_FILES} "${CMAKE_SOURCE_DIR}/cmake/embed_runbooks.cmake"
  COMMENT "Embedding runbooks"
  VERBATIM)
list(APPEND ST_EMBEDDED_SOURCES "${ST_RUNBOOKS_C}")
