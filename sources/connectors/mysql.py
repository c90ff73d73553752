import pymysql

from .base import Connector, first_line, kind_from_text

AUTH_ERRORS = {1044, 1045, 1698, 1251}
TIMEOUT_ERRORS = {1317, 1969, 3024}


class MySQLConnector(Connector):
    kind = "mysql"
    default_port = 3306

    def open(self, target, stack):
        return pymysql.connect(
            host=target,
            port=self.port,
            user=self.spec.username or None,
            password=self.spec.password,
            database=self.spec.database or None,
            connect_timeout=self.connect_timeout,
            read_timeout=self.statement_timeout,
            write_timeout=self.statement_timeout,
            ssl=self.ssl_context(),
            ssl_disabled=self.tls == "disable",
            local_infile=False,
            charset="utf8mb4",
        )

    def server_version(self, conn):
        with conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return cursor.fetchone()[0]

    def classify(self, exc):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = first_line(exc.args[1] if len(exc.args) > 1 else exc)
        if code in AUTH_ERRORS:
            return "auth", detail
        if code == 1049:
            return "not_found", detail
        if code in TIMEOUT_ERRORS:
            return "timeout", detail
        return kind_from_text(str(exc)), detail
