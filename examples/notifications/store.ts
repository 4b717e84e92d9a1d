// In-app notifications are kept in MariaDB/MySQL (seed 002's fp_inapp_notification_create), one row per
// message, keyed by (run, message id) so that a redelivered message writes its row once.
import { createPool, type Pool, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { NotificationMessage } from './channels.js';

export const INAPP_TABLE = 'sluice_example_inapp_notifications';

export class InAppStore {
  private readonly pool: Pool;

  /** `runId` tags this run's rows, so that runs sharing the table stay apart and can be deleted. */
  constructor(
    mysqlUrl: string,
    readonly runId: string,
  ) {
    this.pool = createPool({ uri: mysqlUrl, connectionLimit: 4 });
  }

  async createTable(): Promise<void> {
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${INAPP_TABLE} (
        run_id VARCHAR(100) NOT NULL,
        id VARCHAR(128) NOT NULL,
        notification_id VARCHAR(64) NOT NULL,
        user_id VARCHAR(64) NOT NULL,
        title VARCHAR(200) NOT NULL,
        body TEXT NOT NULL,
        data TEXT NOT NULL,
        priority VARCHAR(8) NOT NULL,
        created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        PRIMARY KEY (run_id, id),
        KEY user_notifications (run_id, user_id)
      )`,
    );
  }

  /** Stores one in-app notification; a second save of the same message changes nothing (at-least-once delivery). */
  async save(messageId: string, message: NotificationMessage): Promise<void> {
    await this.pool.execute(
      `INSERT INTO ${INAPP_TABLE} (run_id, id, notification_id, user_id, title, body, data, priority)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`,
      [
        this.runId,
        messageId,
        message.notificationId,
        message.userId,
        message.title,
        message.body,
        JSON.stringify(message.data),
        message.priority,
      ],
    );
  }

  async count(): Promise<number> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${INAPP_TABLE} WHERE run_id = ?`, [
      this.runId,
    ]);
    return Number(rows[0]!.n);
  }

  /** Deletes this run's rows; the table stays for other runs. */
  async deleteRun(): Promise<number> {
    const [exists] = await this.pool.query<RowDataPacket[]>(
      'SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
      [INAPP_TABLE],
    );
    if (exists.length === 0) return 0;
    const [result] = await this.pool.query<ResultSetHeader>(`DELETE FROM ${INAPP_TABLE} WHERE run_id = ?`, [
      this.runId,
    ]);
    return result.affectedRows;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
