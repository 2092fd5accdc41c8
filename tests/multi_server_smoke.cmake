# multi_server_smoke: a short run of bench/multi_server_bench.cc (docs/BENCHMARKS.md): a real
# PostgreSQL started as the postgres user, two real homeward-server processes on it; 3 trials of
# visibility and deletion lag at --follow-ms 100 and 6 photos ingested through one and two
# servers. Fails on any failed call or a trial over 30 s; skips (77) without postgresql-15. 15-40 s.
if(TARGET multi_server_bench)
  add_test(NAME multi_server_smoke COMMAND multi_server_bench smoke)
  set_tests_properties(multi_server_smoke PROPERTIES
    TIMEOUT 300 RUN_SERIAL TRUE LABELS load SKIP_RETURN_CODE 77
    ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endif()
