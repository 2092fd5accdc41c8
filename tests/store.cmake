homeward_test(catalog_test SOURCES catalog_test.cc LIBS homeward_store SQLite::SQLite3)
