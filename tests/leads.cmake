# Leads: the catalog's lead tables (synthetic descriptors), and the cross-matching end to end
# on real FG-NET photos through the gallery (skipped when ../shared/data is absent).
homeward_test(catalog_leads_test SOURCES catalog_leads_test.cc LIBS homeward_store homeward_catalog_backends)
homeward_test(leads_e2e_test
  SOURCES leads_e2e_test.cc embed_test_util.cc
  LIBS homeward_gallery ${OpenCV_LIBS})
if(TARGET homeward_service)
  homeward_test(leads_server_test
    SOURCES leads_server_test.cc embed_test_util.cc test_server.cc
    LIBS homeward_service homeward_test_process ${OpenCV_LIBS})
endif()
