# Regenerates version.h at every build so --version names the commit that
# was actually built, and rewrites it only when it changes (no needless relinks).
execute_process(COMMAND git -C "${SRC_DIR}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE ST_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR ST_GIT_COMMIT STREQUAL "")
  set(ST_GIT_COMMIT "unknown")
endif()
configure_file("${SRC_DIR}/cmake/version.h.in" "${DST}.tmp" @ONLY)
file(COPY_FILE "${DST}.tmp" "${DST}" ONLY_IF_DIFFERENT)
file(REMOVE "${DST}.tmp")
