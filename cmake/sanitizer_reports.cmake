# The sanitizer-reports fixture of the asan build (CMakeLists.txt).
#   cmake -DMODE=clear -DDIR=<dir> -P sanitizer_reports.cmake   empty DIR
#   cmake -DMODE=check -DDIR=<dir> -P sanitizer_reports.cmake   fail with the
#        reports if any process (test or spilttea-ops) wrote one into DIR
if(MODE STREQUAL "clear")
  file(REMOVE_RECURSE "${DIR}")
  file(MAKE_DIRECTORY "${DIR}")
elseif(MODE STREQUAL "check")
  file(GLOB reports "${DIR}/*")
  if(reports)
    list(LENGTH reports n)
    foreach(r ${reports})
      execute_process(COMMAND ${CMAKE_COMMAND} -E echo "---- ${r}")
      execute_process(COMMAND ${CMAKE_COMMAND} -E cat "${r}")
    endforeach()
    message(FATAL_ERROR "${n} sanitizer report(s) in ${DIR} (above)")
  endif()
  message(STATUS "no sanitizer reports in ${DIR}")
else()
  message(FATAL_ERROR "MODE must be clear or check")
endif()
