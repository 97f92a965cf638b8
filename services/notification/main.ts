/** Entrypoint of the notification service (:5003). */
import { loadConfig } from "@campus/shared/config";
import { startService } from "@campus/shared/service";
import { createNotificationService } from "./app.ts";

await startService(loadConfig("notification"), createNotificationService);
