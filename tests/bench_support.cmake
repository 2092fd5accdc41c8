# Bulk paths used by the benchmarks (bench/): Catalog::AddPhotoBatch.
homeward_test(catalog_batch_test SOURCES catalog_batch_test.cc LIBS homeward_store homeward_catalog_backends)
