#!/bin/sh
# Runs once, when the MySQL container initialises its data directory: the JobFirst schemas
# and strata's replication user (password from STRATA_SOURCE_PASSWORD, as strata reads it).
set -eu
mysql --protocol=socket -uroot -p"$MYSQL_ROOT_PASSWORD" <<SQL
CREATE DATABASE IF NOT EXISTS jobfirst_future;
CREATE DATABASE IF NOT EXISTS jobfirst_dao;
CREATE DATABASE IF NOT EXISTS jobfirst_blockchain;
CREATE USER IF NOT EXISTS 'strata'@'%' IDENTIFIED BY '${STRATA_SOURCE_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'strata'@'%';
SQL
