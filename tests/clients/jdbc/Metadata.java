// PgJDBC's DatabaseMetaData, ResultSetMetaData and prepared statements, printed one fact a line so that the
// test can compare a run against the test Postgres with a run against bemidb. Run: java -cp <jar> Metadata.java
// <jdbc url> <user> <password>
import java.sql.*;
import java.util.*;

public class Metadata {
    static void dump(String label, ResultSet rs, String... cols) throws SQLException {
        List<String> rows = new ArrayList<>();
        while (rs.next()) {
            StringBuilder sb = new StringBuilder(label);
            for (String c : cols) sb.append(" | ").append(c).append('=').append(rs.getString(c));
            rows.add(sb.toString());
        }
        Collections.sort(rows);
        rows.forEach(System.out::println);
    }

    static void attempt(String label, Callable body) {
        try { body.call(); } catch (Exception e) {
            System.out.println(label + " | error " + (e instanceof SQLException ? ((SQLException) e).getSQLState() : e.getClass().getSimpleName()));
        }
    }

    interface Callable { void call() throws Exception; }

    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData md = conn.getMetaData();
            attempt("tables", () -> dump("tables", md.getTables(null, "public", "%", new String[]{"TABLE"}),
                    "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS"));
            attempt("schemas", () -> dump("schemas", md.getSchemas(null, "public"), "TABLE_SCHEM"));
            attempt("columns", () -> dump("columns", md.getColumns(null, "public", "orders", null), "COLUMN_NAME",
                    "DATA_TYPE", "TYPE_NAME", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "COLUMN_DEF",
                    "ORDINAL_POSITION", "IS_NULLABLE", "IS_AUTOINCREMENT", "IS_GENERATEDCOLUMN", "REMARKS"));
            // DBeaver and DataGrip escape _ in a name they look up: Postgres's LIKE takes \ as the escape
            attempt("escaped", () -> dump("escaped", md.getColumns(null, "public", "orders", "order\\_note"),
                    "COLUMN_NAME", "ORDINAL_POSITION"));
            attempt("pk", () -> dump("pk", md.getPrimaryKeys(null, "public", "orders"), "COLUMN_NAME", "KEY_SEQ",
                    "PK_NAME"));
            attempt("index", () -> dump("index", md.getIndexInfo(null, "public", "orders", true, false),
                    "NON_UNIQUE", "INDEX_NAME", "TYPE", "ORDINAL_POSITION", "COLUMN_NAME", "ASC_OR_DESC"));
            attempt("fk", () -> dump("fk", md.getImportedKeys(null, "public", "orders"), "FKCOLUMN_NAME"));
            // DBeaver's SQL dialect and completion start from this (pg_catalog.pg_get_keywords())
            attempt("keywords", () -> System.out.println("keywords | " + md.getSQLKeywords()));
            attempt("shapes", () -> {  // nullability and origin through aliases, joins, subqueries, CTEs
                String sql = "WITH c AS (SELECT id, customer FROM orders) SELECT o.customer AS who, c.id, o.id + 1 "
                        + "AS next, upper(o.customer), s.note, 1 AS one, count(*) OVER () AS n FROM orders o "
                        + "JOIN c ON c.id = o.id JOIN (SELECT id, note FROM orders) s ON s.id = o.id "
                        + "LEFT JOIN orders l ON l.id = o.id + 100 WHERE o.id < 0";
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
                    ResultSetMetaData m = rs.getMetaData();
                    for (int i = 1; i <= m.getColumnCount(); i++) {
                        System.out.println("shapes | " + m.getColumnLabel(i) + " | " + m.getColumnName(i) + " | "
                                + m.getColumnTypeName(i) + " | " + m.getTableName(i) + " | " + m.isNullable(i)
                                + " | " + m.isAutoIncrement(i));
                    }
                }
            });
            attempt("query", () -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT id, customer, total, placed, uid FROM orders WHERE placed >= ? AND uid <> ? ORDER BY id")) {
                    ps.setDate(1, java.sql.Date.valueOf("2024-01-03"));
                    ps.setObject(2, UUID.fromString("00000000-0000-0000-0000-000000000000"));
                    try (ResultSet rs = ps.executeQuery()) {
                        ResultSetMetaData m = rs.getMetaData();
                        for (int i = 1; i <= m.getColumnCount(); i++) {
                            System.out.println("rsmd | " + m.getColumnName(i) + " | " + m.getColumnTypeName(i) + " | "
                                    + m.getColumnType(i) + " | " + m.getPrecision(i) + " | " + m.getScale(i) + " | "
                                    + m.getTableName(i) + " | " + m.isNullable(i) + " | " + m.isAutoIncrement(i)
                                    + " | " + m.getSchemaName(i) + " | " + m.getColumnLabel(i));
                        }
                        int n = 0;
                        while (rs.next()) { n++; System.out.println("row | " + rs.getLong(1) + " | " + rs.getString(2)
                                + " | " + rs.getBigDecimal(3) + " | " + rs.getDate(4) + " | " + rs.getObject(5)); }
                        System.out.println("rows | " + n);
                    }
                }
            });
        }
    }
}
