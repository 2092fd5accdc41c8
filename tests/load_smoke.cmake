# load_smoke: a short run of the load test (bench/load_bench.cc, docs/reliability/load.md): the
# real homeward-server on loopback, 8 clients for 25 s over a 2,000-face synthetic gallery. Fails
# on any code other than OK/UNAVAILABLE, a crash, an fd leak, server errors in its log or an
# unclean SIGTERM exit. RSS is reported, not judged (25 s is all allocator warm-up). ~60 s.
if(TARGET load_bench)
  add_test(NAME load_smoke
    COMMAND load_bench --clients 8 --duration 25 --warmup 5 --faces 2000 --max-rss-growth 0
            --data-dir ${CMAKE_CURRENT_BINARY_DIR}/load_smoke_data
            --mix sighting=1,search_image=1,search_face=2,get_case=1,list_cases=1,stats=1,leads=1)
  set_tests_properties(load_smoke PROPERTIES
    TIMEOUT 300 RUN_SERIAL TRUE LABELS load
    ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endif()
