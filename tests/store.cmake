homeward_test(catalog_test SOURCES catalog_test.cc LIBS homeward_store SQLite::SQLite3)
homeward_test(catalog_audit_test SOURCES catalog_audit_test.cc LIBS homeward_store SQLite::SQLite3)
