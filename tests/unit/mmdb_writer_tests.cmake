# MMDB writer and ASN CSV conversion, checked by reading back with libmaxminddb.
teiten_test(mmdb_writer_test mmdb_writer_test.cc)
target_link_libraries(mmdb_writer_test PRIVATE teiten_mmdb_writer PkgConfig::MAXMINDDB)
