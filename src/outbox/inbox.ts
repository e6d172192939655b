import { sql } from 'drizzle-orm';
import { gantrySchema, type SqlRunner } from './tables.ts';

/**
 * Records that `group` processed message `messageId`, inside the handler's transaction. Returns false when it was
 * already recorded: the message is a redelivery and its effects are already committed.
 */
export async function claimInInbox(
  tx: SqlRunner,
  service: string,
  group: string,
  stream: string,
  messageId: string,
): Promise<boolean> {
  const schema = sql.identifier(gantrySchema(service));
  const { rows } = await tx.execute<{ message_id: string }>(
    sql`insert into ${schema}.inbox (consumer_group, message_id, stream) values (${group}, ${messageId}, ${stream})
        on conflict do nothing returning message_id`,
  );
  return rows.length > 0;
}
