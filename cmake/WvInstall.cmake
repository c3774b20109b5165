# WvInstall.cmake -- what `cmake --install` (and `make install`) puts where,
# under CMAKE_INSTALL_PREFIX (default /usr/local; DESTDIR honoured):
#   bin/wv
#   lib/libweightvault.so.0.N.M, .so.0 (the SONAME), .so; lib/libweightvault.a
#   include/weightvault.h
#   lib/pkgconfig/weightvault.pc (and build/weightvault-uninstalled.pc for
#   linking against the build tree)
#   share/man/man1/wv.1
#   share/bash-completion/completions/wv
# The man page and the completion are generated from the built wv
# (scripts/gen-docs.sh: `wv help`, `wv CMD --help`) by the target wv_docs.
include(GNUInstallDirs)

install(TARGETS wv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS weightvault weightvault_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/weightvault.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# ---- pkg-config ---------------------------------------------------------------
# wv_pc_link_flags(OUT item...): the -L/-l flags of the libraries a target
# links (imported targets, full paths, bare names, flags), in order, without
# repeats; no -L for the linker's own directories.
function(wv_pc_link_flags out)
  set(flags)
  set(items ${ARGN})
  while(items)
    list(POP_FRONT items it)
    if(TARGET ${it})
      get_target_property(loc ${it} IMPORTED_LOCATION)
      if(NOT loc)
        get_target_property(cfgs ${it} IMPORTED_CONFIGURATIONS)
        foreach(c ${cfgs})
          get_target_property(loc ${it} IMPORTED_LOCATION_${c})
          if(loc)
            break()
          endif()
        endforeach()
      endif()
      get_target_property(deps ${it} INTERFACE_LINK_LIBRARIES)
      set(more)
      if(loc)
        list(APPEND more ${loc})
      endif()
      if(deps)
        list(APPEND more ${deps})
      endif()
      list(PREPEND items ${more})
    elseif(it MATCHES "^-")
      list(APPEND flags ${it})
    elseif(IS_ABSOLUTE "${it}")
      get_filename_component(dir "${it}" DIRECTORY)
      get_filename_component(name "${it}" NAME)
      string(REGEX REPLACE "^lib" "" name "${name}")
      string(REGEX REPLACE "\\.(so|a)(\\.[0-9.]*)?$" "" name "${name}")
      list(FIND CMAKE_C_IMPLICIT_LINK_DIRECTORIES "${dir}" implicit)
      if(implicit EQUAL -1)
        list(APPEND flags "-L${dir}")
      endif()
      list(APPEND flags "-l${name}")
    elseif(it)
      list(APPEND flags "-l${it}")
    endif()
  endwhile()
  list(REMOVE_DUPLICATES flags)
  string(JOIN " " joined ${flags})
  set(${out} "${joined}" PARENT_SCOPE)
endfunction()

get_target_property(wv_static_links weightvault_static INTERFACE_LINK_LIBRARIES)
wv_pc_link_flags(WV_PC_LIBS_PRIVATE ${wv_static_links})
string(JOIN " " WV_PC_FEATURES ${WV_FEATURES})
# The prefix is the one installed to (cmake --install --prefix too), so the
# file is written at install time, from a template whose other fields are
# filled in now.
set(WV_PC_PREFIX "@WV_PC_PREFIX@")
set(WV_PC_LIBDIR "@WV_PC_LIBDIR@")
set(WV_PC_INCLUDEDIR "@WV_PC_INCLUDEDIR@")
configure_file(${CMAKE_SOURCE_DIR}/cmake/weightvault.pc.in
               ${CMAKE_BINARY_DIR}/weightvault.pc.stage @ONLY)
install(CODE "
  set(WV_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  foreach(v LIBDIR INCLUDEDIR)
    set(d \"\${CMAKE_INSTALL_\${v}}\")
    if(NOT d)
      set(d \"${CMAKE_INSTALL_LIBDIR}\")
      if(v STREQUAL INCLUDEDIR)
        set(d \"${CMAKE_INSTALL_INCLUDEDIR}\")
      endif()
    endif()
    if(IS_ABSOLUTE \"\${d}\")
      set(WV_PC_\${v} \"\${d}\")
    else()
      set(WV_PC_\${v} \"\\\${prefix}/\${d}\")
    endif()
  endforeach()
  configure_file(\"${CMAKE_BINARY_DIR}/weightvault.pc.stage\"
                 \"${CMAKE_BINARY_DIR}/weightvault.pc\" @ONLY)
")
install(FILES ${CMAKE_BINARY_DIR}/weightvault.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# The build tree's own: PKG_CONFIG_PATH=build makes pkg-config use it
# (pkg-config prefers NAME-uninstalled.pc) before anything is installed.
set(WV_PC_PREFIX "${CMAKE_BINARY_DIR}")
set(WV_PC_LIBDIR "${CMAKE_BINARY_DIR}")
set(WV_PC_INCLUDEDIR "${CMAKE_SOURCE_DIR}/include")
configure_file(${CMAKE_SOURCE_DIR}/cmake/weightvault.pc.in
               ${CMAKE_BINARY_DIR}/weightvault-uninstalled.pc @ONLY)

# ---- man page and bash completion -------------------------------------------
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/wv.1 ${CMAKE_BINARY_DIR}/wv.bash
  COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
          bash ${CMAKE_SOURCE_DIR}/scripts/gen-docs.sh $<TARGET_FILE:wv>
          ${CMAKE_BINARY_DIR} ${PROJECT_VERSION}
  DEPENDS wv ${CMAKE_SOURCE_DIR}/scripts/gen-docs.sh
          ${CMAKE_SOURCE_DIR}/docs/wv.1.in
          ${CMAKE_SOURCE_DIR}/scripts/wv-completion.bash.in
  COMMENT "Generating the wv(1) man page and bash completion from wv --help"
  VERBATIM)
add_custom_target(wv_docs ALL DEPENDS ${CMAKE_BINARY_DIR}/wv.1
                                      ${CMAKE_BINARY_DIR}/wv.bash)
install(FILES ${CMAKE_BINARY_DIR}/wv.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/wv.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME wv)
