DROP INDEX "customers_email_key";--> statement-breakpoint
ALTER TABLE "customers" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "customers_live_email_key" ON "customers" USING btree ("email") WHERE "customers"."deleted_at" is null;